// The classifier's oracle corpus for MariaDB/MySQL (tests/classify_oracle_mysql.rs).
// One statement per line; a line that starts with two spaces continues the one above; lines
// that start with `//` are notes. Every object name starts with `orc_`, which the test replaces
// with a prefix of its own (the objects live in the test database). Sections:
//   [setup]     run read-write on the primary before the corpus (then replicated)
//   [setup-admin] the same, by the bed's admin user
//   [teardown]  run afterwards
//   [statements] the corpus
//   [explain-forms] with [explained]: every form applied to every explained statement
// Each corpus statement also runs with a block comment before it, a line comment (`#`, or
// `-- `) before it and a block comment after it.

// [setup]
CREATE TABLE orc_users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200), score INT NOT NULL DEFAULT 0, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, data JSON, KEY orc_users_name (name)) ENGINE=InnoDB
CREATE TABLE orc_posts (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, title VARCHAR(200) NOT NULL, body TEXT, published BOOL NOT NULL DEFAULT FALSE, KEY orc_posts_user (user_id), FULLTEXT KEY orc_posts_text (title, body)) ENGINE=InnoDB
CREATE TABLE orc_log (id BIGINT AUTO_INCREMENT PRIMARY KEY, msg TEXT) ENGINE=InnoDB
CREATE SEQUENCE orc_seq
CREATE VIEW orc_v AS SELECT id, name FROM orc_users
CREATE PROCEDURE orc_proc(m TEXT) MODIFIES SQL DATA INSERT INTO orc_log (msg) VALUES (m)
CREATE PROCEDURE orc_noop() READS SQL DATA SELECT 1
INSERT INTO orc_users (name, email, score, data) SELECT CONCAT('user', seq), CONCAT('u', seq, '@example.com'), seq, JSON_OBJECT('a', seq) FROM seq_1_to_20
INSERT INTO orc_posts (user_id, title, body, published) SELECT seq % 20 + 1, CONCAT('title ', seq), CONCAT('body ', seq), seq % 2 = 0 FROM seq_1_to_50

// [setup-admin]
// Stored functions need SUPER when the binary log is on: made by the bed's admin (database {db}).
CREATE FUNCTION {db}.orc_read(i INT) RETURNS INT DETERMINISTIC NO SQL RETURN i + 1
CREATE FUNCTION {db}.orc_write(m TEXT) RETURNS INT DETERMINISTIC MODIFIES SQL DATA BEGIN INSERT INTO {db}.orc_log (msg) VALUES (m); RETURN 1; END

// [teardown]
DROP VIEW IF EXISTS orc_v, orc_v2
DROP TABLE IF EXISTS orc_users, orc_posts, orc_log, orc_new, orc_copy, orc_people, orc_like
DROP SEQUENCE IF EXISTS orc_seq, orc_seq2
DROP FUNCTION IF EXISTS orc_read
DROP FUNCTION IF EXISTS orc_write
DROP FUNCTION IF EXISTS orc_f2
DROP PROCEDURE IF EXISTS orc_proc
DROP PROCEDURE IF EXISTS orc_noop
DROP PROCEDURE IF EXISTS orc_p2

// [statements]
// Diesel's own SQL
SELECT `orc_users`.`id`, `orc_users`.`name` FROM `orc_users` WHERE (`orc_users`.`id` = 1) LIMIT 1
SELECT `orc_users`.`id`, `orc_users`.`name`, `orc_users`.`email` FROM `orc_users` ORDER BY `orc_users`.`id` DESC LIMIT 10 OFFSET 5
SELECT COUNT(*) FROM `orc_users` INNER JOIN `orc_posts` ON (`orc_posts`.`user_id` = `orc_users`.`id`)
SELECT `orc_posts`.`id`, `orc_posts`.`title` FROM `orc_posts` WHERE (`orc_posts`.`user_id` IN (1, 2, 3)) ORDER BY `orc_posts`.`id`
SELECT EXISTS (SELECT `orc_users`.`id` FROM `orc_users` WHERE (`orc_users`.`name` = 'user1'))
SELECT `orc_users`.`id` FROM `orc_users` WHERE (`orc_users`.`id` = 1) FOR UPDATE
SELECT `orc_users`.`id` FROM `orc_users` FOR UPDATE SKIP LOCKED
SELECT `orc_users`.`id` FROM `orc_users` WHERE `orc_users`.`id` = 2 LOCK IN SHARE MODE
SELECT * FROM orc_users FOR UPDATE NOWAIT
SELECT * FROM orc_users FOR UPDATE WAIT 1
INSERT INTO `orc_users` (`name`) VALUES ('a')
INSERT INTO `orc_users` (`id`, `name`) VALUES (1, 'b') ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)
INSERT IGNORE INTO orc_users (id, name) VALUES (1, 'c')
INSERT INTO orc_users (name) VALUES ('x'), ('y'), ('z')
INSERT INTO orc_users SET name = 'set'
INSERT INTO orc_log (msg) SELECT name FROM orc_users
INSERT INTO orc_users (name) VALUES ('r') RETURNING id, name
REPLACE INTO `orc_users` (`id`, `name`) VALUES (1, 'd')
REPLACE orc_log (msg) VALUES ('r')
UPDATE `orc_users` SET `name` = 'c' WHERE (`orc_users`.`id` = 1)
UPDATE orc_users SET score = score + 1 ORDER BY id LIMIT 3
UPDATE orc_posts p JOIN orc_users u ON u.id = p.user_id SET p.published = TRUE WHERE u.score > 5
UPDATE LOW_PRIORITY orc_users SET score = 0
DELETE FROM `orc_users` WHERE (`orc_users`.`id` = 999)
DELETE p FROM orc_posts p JOIN orc_users u ON u.id = p.user_id WHERE u.name = 'nobody'
DELETE FROM orc_log ORDER BY id LIMIT 1
DELETE FROM orc_log RETURNING id
DELETE QUICK IGNORE FROM orc_log
TRUNCATE orc_log
TRUNCATE TABLE orc_log
// plain reads
SELECT 1
select 1 as one, 'two' as two, 3.0 as three
SELECT NOW(), CURRENT_USER(), DATABASE(), VERSION()
SELECT * FROM orc_users
SELECT id, name FROM orc_users WHERE score BETWEEN 3 AND 7 ORDER BY name
SELECT u.name, COUNT(p.id) FROM orc_users u LEFT JOIN orc_posts p ON p.user_id = u.id GROUP BY u.name HAVING COUNT(p.id) > 1
SELECT * FROM orc_users u WHERE EXISTS (SELECT 1 FROM orc_posts p WHERE p.user_id = u.id)
SELECT * FROM orc_users WHERE id IN (SELECT user_id FROM orc_posts WHERE published)
SELECT * FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY score DESC) AS rn FROM orc_users) ranked WHERE rn <= 3
SELECT name, score, RANK() OVER (PARTITION BY score % 3 ORDER BY score) FROM orc_users
SELECT SQL_CALC_FOUND_ROWS * FROM orc_users LIMIT 2
SELECT SQL_NO_CACHE * FROM orc_users
SELECT STRAIGHT_JOIN u.id FROM orc_users u JOIN orc_posts p ON p.user_id = u.id
SELECT HIGH_PRIORITY DISTINCT score FROM orc_users
SELECT * FROM orc_users ORDER BY id LIMIT 2, 5
SELECT * FROM orc_users USE INDEX (orc_users_name) WHERE name = 'user1'
SELECT * FROM orc_users FORCE INDEX (PRIMARY) WHERE id > 3
(SELECT id FROM orc_users) UNION (SELECT user_id FROM orc_posts)
SELECT id FROM orc_users UNION ALL SELECT id FROM orc_posts EXCEPT SELECT 1 INTERSECT SELECT 2
((SELECT 1)) UNION SELECT 2
SELECT * FROM orc_v
SELECT * FROM orc_users WHERE name LIKE 'user1%' OR email LIKE '%example%'
SELECT * FROM orc_users WHERE name REGEXP '^user[0-9]+$'
SELECT * FROM orc_posts WHERE MATCH (title, body) AGAINST ('title' IN BOOLEAN MODE)
SELECT JSON_EXTRACT(data, '$.a'), JSON_VALUE(data, '$.a') FROM orc_users
SELECT JSON_ARRAYAGG(name), JSON_OBJECTAGG(id, name) FROM orc_users
SELECT GROUP_CONCAT(name ORDER BY name SEPARATOR ', ') FROM orc_users
SELECT DATE_FORMAT(created_at, '%Y-%m-%d'), UNIX_TIMESTAMP(created_at), DATE_ADD(created_at, INTERVAL 1 DAY) FROM orc_users
SELECT COALESCE(email, 'none'), NULLIF(score, 0), GREATEST(score, 3), LEAST(score, 3), IFNULL(email, '') FROM orc_users
SELECT CASE WHEN score > 10 THEN 'high' ELSE 'low' END, IF(score > 5, 'y', 'n') FROM orc_users
SELECT CAST(score AS CHAR), CONVERT(score, SIGNED), CAST('1.5' AS DECIMAL(10, 2)) FROM orc_users
SELECT SUBSTRING(name, 1, 3), SUBSTRING(name FROM 1 FOR 3), LOCATE('r', name), INSTR(name, 'r') FROM orc_users
SELECT REPLACE(name, 'user', 'u'), INSERT(name, 1, 1, 'X'), UPPER(name), LENGTH(name) FROM orc_users
SELECT MD5(name), SHA2(name, 256), UUID() IS NOT NULL FROM orc_users
SELECT RAND() < 2, SLEEP(0), BENCHMARK(1, 1)
SELECT orc_read(1)
SELECT orc_read(id) FROM orc_users
SELECT * FROM seq_1_to_5
SELECT @@version, @@session.sql_mode, @@global.read_only
SELECT @orc_var
SELECT @@last_insert_id
SELECT LAST_INSERT_ID()
SELECT LAST_INSERT_ID(5)
SELECT ROW_COUNT()
SELECT FOUND_ROWS()
SELECT CONNECTION_ID() > 0
SELECT IS_FREE_LOCK('orc_lock'), IS_USED_LOCK('orc_lock')
SELECT GET_LOCK('orc_lock', 0)
SELECT RELEASE_LOCK('orc_lock')
SELECT RELEASE_ALL_LOCKS()
SELECT UUID_SHORT()
SELECT NEXTVAL(orc_seq)
SELECT NEXT VALUE FOR orc_seq
SELECT PREVIOUS VALUE FOR orc_seq
SELECT LASTVAL(orc_seq)
SELECT SETVAL(orc_seq, 100)
SELECT id, NEXT VALUE FOR orc_seq FROM orc_users
SELECT * FROM orc_seq
SELECT @orc_n := 1
SELECT @orc_n := @orc_n + 1 FROM orc_users
SELECT id INTO @orc_id FROM orc_users LIMIT 1
SELECT id FROM orc_users LIMIT 1 INTO @orc_id
SELECT MASTER_POS_WAIT('log', 4, 0.001) IS NULL OR TRUE
SELECT MASTER_GTID_WAIT('0-1-1', 0.001)
SELECT @@gtid_current_pos IS NOT NULL, @@gtid_binlog_pos IS NOT NULL
SELECT 'NEXTVAL(1)', 'FOR UPDATE', 'INSERT INTO t', "DELETE FROM t"
SELECT 'it''s; DELETE FROM orc_users; -- ' AS s
SELECT 'it\'s; DELETE FROM orc_users' AS s
SELECT "double \" quoted; DELETE FROM orc_users" AS s
SELECT `name` AS `FOR UPDATE` FROM orc_users
SELECT `a``b`.id FROM orc_users AS `a``b`
SELECT 1 /* FOR UPDATE */, 2 -- FOR UPDATE
  , 3
SELECT 1 # FOR UPDATE
  , 2
SELECT 1 /*! , 2 */
SELECT /*!40001 SQL_NO_CACHE */ * FROM orc_users
SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1
SELECT /*M!100100 1 AS m, */ 2 AS n
SELECT 1--1
SELECT 1 -- a comment; DELETE FROM orc_users
SELECT X'1F', 0x1F, b'101', 1e3, .5, _utf8mb4'x', N'y'
SELECT p.update, p.delete FROM (SELECT 1 AS `update`, 2 AS `delete`) p
// a function of the application that writes, routed by a hint
SELECT /* diesel_rw:primary */ orc_write('hinted')
/* diesel_rw:primary */ SELECT orc_write(name) FROM orc_users LIMIT 1
// CTEs
WITH x AS (SELECT 1 AS a) SELECT a FROM x
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r
WITH a AS (SELECT id FROM orc_users), b AS (SELECT user_id FROM orc_posts) SELECT * FROM a JOIN b ON a.id = b.user_id
WITH x AS (SELECT * FROM orc_users FOR UPDATE) SELECT * FROM x
WITH x AS (SELECT NEXTVAL(orc_seq) AS n) SELECT * FROM x
WITH x AS (SELECT 1 AS a) SELECT * FROM x FOR UPDATE
// other reads
VALUES (1, 'a'), (2, 'b')
SHOW TABLES
SHOW TABLES LIKE 'orc%'
SHOW FULL COLUMNS FROM orc_users
SHOW CREATE TABLE orc_users
SHOW CREATE VIEW orc_v
SHOW CREATE FUNCTION orc_read
SHOW CREATE PROCEDURE orc_proc
SHOW INDEX FROM orc_posts
SHOW TABLE STATUS LIKE 'orc%'
SHOW VARIABLES LIKE 'read_only'
SHOW SESSION VARIABLES LIKE 'tx_read_only'
SHOW GLOBAL STATUS LIKE 'Uptime'
SHOW WARNINGS
SHOW ERRORS
SHOW PROCESSLIST
SHOW GRANTS
SHOW DATABASES
SHOW ENGINES
SHOW CHARACTER SET LIKE 'utf8%'
SHOW COLLATION LIKE 'utf8mb4_bin'
SHOW FUNCTION STATUS WHERE Db = DATABASE()
SHOW PROCEDURE STATUS WHERE Db = DATABASE()
SHOW OPEN TABLES
SHOW BINLOG STATUS
SHOW MASTER STATUS
SHOW SLAVE STATUS
SHOW BINARY LOGS
DESCRIBE orc_users
DESC orc_users name
EXPLAIN orc_users
HELP 'contents'
CHECKSUM TABLE orc_users
CHECK TABLE orc_users
// DDL
CREATE TABLE orc_new (id INT PRIMARY KEY)
CREATE TABLE IF NOT EXISTS orc_users (id INT)
CREATE TABLE orc_copy AS SELECT * FROM orc_users
CREATE TABLE orc_like LIKE orc_users
CREATE TEMPORARY TABLE orc_tmp (a INT)
CREATE INDEX orc_users_email ON orc_users (email)
CREATE VIEW orc_v2 AS SELECT 1 AS a
CREATE OR REPLACE VIEW orc_v AS SELECT id, name FROM orc_users
CREATE SEQUENCE orc_seq2 START WITH 100
CREATE FUNCTION orc_f2() RETURNS INT DETERMINISTIC NO SQL RETURN 1
CREATE PROCEDURE orc_p2() SELECT 1
CREATE TRIGGER orc_trg BEFORE UPDATE ON orc_users FOR EACH ROW SET NEW.score = NEW.score
CREATE EVENT orc_ev ON SCHEDULE EVERY 1 DAY DO DELETE FROM orc_log
ALTER TABLE orc_users ADD COLUMN extra INT
ALTER TABLE orc_users DROP COLUMN email
ALTER TABLE orc_users RENAME TO orc_people
ALTER TABLE orc_users ALTER COLUMN score SET DEFAULT 5
ALTER TABLE orc_users ENGINE=InnoDB
ALTER SEQUENCE orc_seq RESTART WITH 1
ALTER VIEW orc_v AS SELECT id FROM orc_users
RENAME TABLE orc_log TO orc_log2
DROP TABLE orc_log
DROP TABLE IF EXISTS orc_nothing
DROP VIEW orc_v
DROP INDEX orc_users_name ON orc_users
DROP SEQUENCE orc_seq
DROP FUNCTION orc_read
DROP PROCEDURE orc_proc
OPTIMIZE TABLE orc_log
ANALYZE TABLE orc_users
REPAIR TABLE orc_log
LOCK TABLES orc_users READ
LOCK TABLES orc_users WRITE
UNLOCK TABLES
// stored routines, DO
CALL orc_proc('called')
CALL orc_noop()
DO 1
DO SLEEP(0)
DO GET_LOCK('orc_lock', 0)
DO orc_write('do')
DO NEXTVAL(orc_seq)
// prepared statements
PREPARE orc_p FROM 'SELECT * FROM orc_users WHERE id = ?'
PREPARE orc_p FROM 'SELECT 1'; EXECUTE orc_p
PREPARE orc_p FROM 'INSERT INTO orc_log (msg) VALUES (?)'; SET @orc_m = 'x'; EXECUTE orc_p USING @orc_m
PREPARE orc_p FROM 'UPDATE orc_users SET score = 2'; EXECUTE orc_p
PREPARE orc_p FROM 'DELETE FROM orc_log'
EXECUTE IMMEDIATE 'SELECT 1'
EXECUTE IMMEDIATE 'DELETE FROM orc_log'
PREPARE orc_p FROM 'SELECT 1'; DEALLOCATE PREPARE orc_p
// handlers
HANDLER orc_users OPEN
HANDLER orc_users OPEN; HANDLER orc_users READ FIRST; HANDLER orc_users CLOSE
// settings
SET @orc_v = 1
SET @orc_v := (SELECT COUNT(*) FROM orc_users)
SET SESSION sql_mode = 'ANSI_QUOTES'
SET NAMES utf8mb4
SET time_zone = '+00:00'
SET SESSION max_statement_time = 10
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ
SET TRANSACTION READ WRITE
SET SESSION TRANSACTION READ WRITE
SET autocommit = 1
SET STATEMENT max_statement_time = 5 FOR SELECT 1
SET STATEMENT max_statement_time = 5 FOR DELETE FROM orc_log
// transaction control (the test's transaction is read-only; it is rolled back)
SAVEPOINT orc_sp
SAVEPOINT orc_sp; RELEASE SAVEPOINT orc_sp
SAVEPOINT orc_sp; ROLLBACK TO SAVEPOINT orc_sp
COMMIT
ROLLBACK
START TRANSACTION READ ONLY
BEGIN
XA RECOVER
// several statements
SELECT 1; SELECT 2
SELECT 1; DELETE FROM orc_log
SELECT 'a;b'; SELECT `name` FROM orc_users
INSERT INTO orc_log (msg) VALUES ('one'); SELECT 1
// quoting and comment tricks
SELECT '/* DELETE FROM orc_log */'
SELECT `orc_users`.name FROM orc_users WHERE name = 'x'' FOR UPDATE'
SELECT 'O\'Brien'
SELECT '\\'; SELECT 1
/* leading */ # and a hash line
  SELECT 1
# DELETE FROM orc_log
  SELECT 1
-- DELETE FROM orc_log
  SELECT 1
SELECT/**/1
SELECT * FROM orc_users /* FOR UPDATE */ WHERE id = 1
/*!40101 SET @orc_saved = @@session.sql_mode */
/*!40101 SELECT 1 */
/*M!100100 SELECT 1 */

// [explain-forms]
EXPLAIN {}
EXPLAIN EXTENDED {}
EXPLAIN PARTITIONS {}
EXPLAIN FORMAT=JSON {}
explain format = json {}
DESCRIBE {}
DESC {}
ANALYZE {}
ANALYZE FORMAT=JSON {}

// [explained]
SELECT * FROM orc_users WHERE id = 1
SELECT u.id, COUNT(*) FROM orc_users u JOIN orc_posts p ON p.user_id = u.id GROUP BY u.id
SELECT * FROM orc_users FOR UPDATE
SELECT * FROM orc_users LOCK IN SHARE MODE
SELECT NEXT VALUE FOR orc_seq
SELECT NEXTVAL(orc_seq)
SELECT id INTO @orc_x FROM orc_users LIMIT 1
INSERT INTO orc_log (msg) VALUES ('x')
INSERT INTO orc_users (id, name) VALUES (1, 'x') ON DUPLICATE KEY UPDATE name = 'y'
INSERT INTO orc_log (msg) SELECT name FROM orc_users
REPLACE INTO orc_log (id, msg) VALUES (1, 'r')
UPDATE orc_users SET score = 3 WHERE id = 2
UPDATE orc_posts p JOIN orc_users u ON u.id = p.user_id SET p.published = FALSE
DELETE FROM orc_log WHERE id > 100
DELETE p FROM orc_posts p JOIN orc_users u ON u.id = p.user_id WHERE u.id = 0
WITH x AS (SELECT 1 AS a) SELECT * FROM x
(SELECT 1) UNION (SELECT 2)

// [unseen]
// Calls of the application's own functions that write: the text does not show them. Run apart
// and asserted with the functions learned from the catalog (classify_sql_with), as a pool
// classifies them; without the catalog, route them with a hint (above).
SELECT orc_write('unseen')
SELECT orc_write(name) FROM orc_users LIMIT 1
ANALYZE SELECT orc_write('unseen')
SELECT * FROM orc_users WHERE orc_write(name) = 1
