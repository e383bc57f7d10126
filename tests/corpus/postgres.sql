// The classifier's oracle corpus for PostgreSQL (tests/classify_oracle_pg.rs).
// One statement per line; a line that starts with two spaces continues the one above; lines
// that start with `//` are notes. Every object name starts with `orc_`, which the test replaces
// with a prefix of its own (schema orc_s, on the search path). Sections:
//   [setup]     run read-write on the primary before the corpus (then replicated to the standby)
//   [teardown]  run afterwards
//   [statements] the corpus
//   [explain-forms] with [explained]: every form applied to every explained statement
// Each corpus statement also runs with a block comment before it, a line comment before it and
// a block comment after it.

// [setup]
CREATE SCHEMA orc_s
CREATE TABLE orc_s.orc_users (id serial PRIMARY KEY, name text NOT NULL, email text, score int DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), data jsonb NOT NULL DEFAULT '{}')
CREATE TABLE orc_s.orc_posts (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES orc_s.orc_users (id), title text NOT NULL, body text, published boolean NOT NULL DEFAULT false, tags text[] NOT NULL DEFAULT '{}')
CREATE TABLE orc_s.orc_log (id bigserial PRIMARY KEY, msg text)
CREATE SEQUENCE orc_s.orc_seq
CREATE TYPE orc_s.orc_mood AS ENUM ('sad', 'ok', 'happy')
CREATE VIEW orc_s.orc_v AS SELECT id, name FROM orc_s.orc_users
CREATE MATERIALIZED VIEW orc_s.orc_mv AS SELECT count(*) AS n FROM orc_s.orc_users
CREATE INDEX orc_posts_brin ON orc_s.orc_posts USING brin (id)
CREATE INDEX orc_posts_gin ON orc_s.orc_posts USING gin (tags) WITH (fastupdate = on)
CREATE FUNCTION orc_s.orc_read(i int) RETURNS int LANGUAGE sql STABLE AS $$ SELECT i + 1 $$
CREATE FUNCTION orc_s.orc_write(n text) RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO orc_s.orc_log (msg) VALUES (n) RETURNING 1 $$
CREATE PROCEDURE orc_s.orc_proc(n text) LANGUAGE sql AS $$ INSERT INTO orc_s.orc_log (msg) VALUES (n) $$
CREATE PROCEDURE orc_s.orc_noop() LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END $$
CREATE FUNCTION orc_s.diesel_set_updated_at() RETURNS trigger AS $$ BEGIN IF (NEW IS DISTINCT FROM OLD AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at) THEN NEW.updated_at := current_timestamp; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql
CREATE FUNCTION orc_s.diesel_manage_updated_at(_tbl regclass) RETURNS VOID AS $$ BEGIN EXECUTE format('CREATE TRIGGER set_updated_at BEFORE UPDATE ON %s FOR EACH ROW EXECUTE PROCEDURE orc_s.diesel_set_updated_at()', _tbl); END; $$ LANGUAGE plpgsql
INSERT INTO orc_s.orc_users (name, email, score) SELECT 'user' || g, 'u' || g || '@example.com', g FROM generate_series(1, 20) g
INSERT INTO orc_s.orc_posts (user_id, title, body, published, tags) SELECT g % 20 + 1, 'title ' || g, 'body ' || g, g % 2 = 0, ARRAY['a', 'b' || g % 3] FROM generate_series(1, 50) g
SELECT nextval('orc_s.orc_seq')

// [teardown]
DROP SCHEMA orc_s CASCADE

// [statements]
// Diesel's own SQL
SELECT "orc_users"."id", "orc_users"."name" FROM "orc_users" WHERE ("orc_users"."id" = 1) LIMIT 1
SELECT "orc_users"."id", "orc_users"."name", "orc_users"."email" FROM "orc_users" ORDER BY "orc_users"."id" DESC LIMIT 10 OFFSET 5
SELECT COUNT(*) FROM "orc_users" INNER JOIN "orc_posts" ON ("orc_posts"."user_id" = "orc_users"."id")
SELECT "orc_posts"."id", "orc_posts"."title" FROM "orc_posts" WHERE ("orc_posts"."user_id" = ANY(ARRAY[1, 2, 3])) ORDER BY "orc_posts"."id"
SELECT EXISTS (SELECT "orc_users"."id" FROM "orc_users" WHERE ("orc_users"."name" = 'user1'))
SELECT "orc_users"."id" FROM "orc_users" WHERE ("orc_users"."id" = 1) FOR UPDATE
SELECT "orc_users"."id" FROM "orc_users" FOR NO KEY UPDATE SKIP LOCKED
SELECT "orc_users"."id" FROM "orc_users" WHERE "orc_users"."id" = 2 FOR SHARE
SELECT "orc_users"."id" FROM "orc_users" FOR KEY SHARE NOWAIT
SELECT * FROM orc_users FOR UPDATE OF orc_users
INSERT INTO "orc_users" ("name") VALUES ('a') RETURNING "orc_users"."id", "orc_users"."name"
INSERT INTO "orc_users" ("id", "name") VALUES (1, 'b') ON CONFLICT ("id") DO UPDATE SET "name" = excluded."name"
INSERT INTO "orc_users" ("id", "name") VALUES (1, 'b') ON CONFLICT DO NOTHING
INSERT INTO orc_users (name) VALUES ('x'), ('y'), ('z')
INSERT INTO orc_users DEFAULT VALUES RETURNING *
INSERT INTO orc_log (msg) SELECT name FROM orc_users
UPDATE "orc_users" SET "name" = 'c' WHERE ("orc_users"."id" = 1) RETURNING "orc_users"."id"
UPDATE orc_users SET score = score + 1
UPDATE orc_posts SET published = true FROM orc_users WHERE orc_users.id = orc_posts.user_id AND orc_users.score > 5
DELETE FROM "orc_users" WHERE ("orc_users"."id" = 999)
DELETE FROM orc_posts USING orc_users WHERE orc_posts.user_id = orc_users.id AND orc_users.name = 'nobody'
DELETE FROM orc_log
MERGE INTO orc_users u USING (VALUES (1, 'm')) AS s (id, name) ON u.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name WHEN NOT MATCHED THEN INSERT (name) VALUES (s.name)
MERGE INTO orc_users u USING orc_posts p ON u.id = p.user_id WHEN MATCHED THEN DO NOTHING
TRUNCATE orc_log
TRUNCATE TABLE orc_log RESTART IDENTITY CASCADE
// plain reads
SELECT 1
select 1 as one, 'two' as two, 3.0 as three
SELECT now(), current_user, current_database(), version()
SELECT * FROM orc_users
SELECT id, name FROM orc_users WHERE score BETWEEN 3 AND 7 ORDER BY name
SELECT u.name, count(p.id) FROM orc_users u LEFT JOIN orc_posts p ON p.user_id = u.id GROUP BY u.name HAVING count(p.id) > 1
SELECT * FROM orc_users u WHERE EXISTS (SELECT 1 FROM orc_posts p WHERE p.user_id = u.id)
SELECT * FROM orc_users WHERE id IN (SELECT user_id FROM orc_posts WHERE published)
SELECT * FROM (SELECT id, row_number() OVER (ORDER BY score DESC) AS rn FROM orc_users) ranked WHERE rn <= 3
SELECT name, score, rank() OVER (PARTITION BY score % 3 ORDER BY score) FROM orc_users
SELECT DISTINCT ON (user_id) user_id, title FROM orc_posts ORDER BY user_id, id DESC
SELECT * FROM orc_users ORDER BY id LIMIT 5 OFFSET 2
SELECT * FROM orc_users ORDER BY id FETCH FIRST 3 ROWS ONLY
(SELECT id FROM orc_users) UNION (SELECT user_id FROM orc_posts)
SELECT id FROM orc_users UNION ALL SELECT id FROM orc_posts EXCEPT SELECT 1 INTERSECT SELECT 2
((SELECT 1)) UNION SELECT 2
SELECT * FROM orc_v
SELECT * FROM orc_mv
SELECT * FROM orc_users WHERE name LIKE 'user1%' OR email ILIKE '%EXAMPLE%'
SELECT * FROM orc_users WHERE name ~ '^user[0-9]+$'
SELECT data->>'a', data #> '{a,b}', data #>> '{a,b}', data @> '{"a": 1}' FROM orc_users
SELECT tags[1], array_length(tags, 1), 'a' = ANY(tags) FROM orc_posts
SELECT unnest(tags) FROM orc_posts
SELECT * FROM generate_series(1, 10) AS g
SELECT string_agg(name, ', ' ORDER BY name) FROM orc_users
SELECT json_agg(u) FROM orc_users u
SELECT jsonb_build_object('id', id, 'name', name) FROM orc_users
SELECT to_char(created_at, 'YYYY-MM-DD'), date_trunc('day', created_at), extract(epoch FROM created_at) FROM orc_users
SELECT coalesce(email, 'none'), nullif(score, 0), greatest(score, 3), least(score, 3) FROM orc_users
SELECT CASE WHEN score > 10 THEN 'high' ELSE 'low' END FROM orc_users
SELECT score::text, CAST(score AS bigint), score::numeric(10, 2) FROM orc_users
SELECT 'happy'::orc_mood, enum_range(NULL::orc_mood)
SELECT substring(name FROM 1 FOR 3), position('r' IN name), overlay(name PLACING 'X' FROM 1 FOR 1) FROM orc_users
SELECT replace(name, 'user', 'u'), upper(name), lower(name), length(name) FROM orc_users
SELECT md5(name), encode(sha256(name::bytea), 'hex') FROM orc_users
SELECT random() < 2, gen_random_uuid() IS NOT NULL
SELECT pg_sleep(0)
SELECT orc_read(1)
SELECT orc_s.orc_read(id) FROM orc_users
SELECT count(*) FILTER (WHERE published) FROM orc_posts
SELECT * FROM orc_users TABLESAMPLE SYSTEM (50)
SELECT * FROM orc_users, LATERAL (SELECT count(*) FROM orc_posts WHERE user_id = orc_users.id) c
SELECT id FROM orc_users WHERE id = ANY('{1,2,3}'::int[])
SELECT last_value, is_called FROM orc_seq
SELECT pg_sequence_last_value('orc_seq')
SELECT * FROM pg_sequences WHERE sequencename = 'orc_seq'
SELECT relname, reltuples FROM pg_class WHERE relname LIKE 'orc%'
SELECT * FROM information_schema.tables WHERE table_name LIKE 'orc%'
SELECT pg_is_in_recovery()
SELECT pg_last_wal_replay_lsn() IS NULL OR true
SELECT pg_current_wal_lsn()
SELECT pg_current_wal_insert_lsn()
SELECT pg_current_wal_flush_lsn()
SELECT pg_walfile_name('0/1000000')
SELECT * FROM pg_walfile_name_offset('0/1000000')
SELECT txid_current()
SELECT pg_current_xact_id()
SELECT txid_current_if_assigned()
SELECT pg_current_xact_id_if_assigned()
SELECT txid_current_snapshot()
SELECT pg_current_snapshot()
SELECT pg_backend_pid() > 0
SELECT inet_server_port()
SELECT pg_postmaster_start_time() < now()
SELECT pg_size_pretty(pg_total_relation_size('orc_users'))
SELECT pg_get_viewdef('orc_v'::regclass)
SELECT pg_get_functiondef('orc_read'::regproc)
SELECT pg_typeof(1), pg_column_size(name) FROM orc_users
SELECT current_setting('search_path')
SELECT set_config('application_name', 'oracle', false)
SELECT set_config('orc.x', '1', true)
SELECT pg_advisory_lock(738201)
SELECT pg_try_advisory_lock(738202)
SELECT pg_advisory_xact_lock(738203)
SELECT pg_try_advisory_xact_lock_shared(738204)
SELECT pg_advisory_unlock_all()
SELECT pg_notify('orc_channel', 'hi')
SELECT nextval('orc_seq')
SELECT setval('orc_seq', 10)
SELECT setval('orc_s.orc_seq', 10, false)
SELECT NEXTVAL('orc_seq'::regclass)
SELECT "nextval"('orc_seq')
SELECT pg_catalog.nextval('orc_seq')
SELECT id, nextval('orc_seq') FROM orc_users
SELECT * FROM orc_users WHERE id = (SELECT nextval('orc_seq'))
VALUES (nextval('orc_seq'))
SELECT brin_summarize_new_values('orc_posts_brin')
SELECT brin_summarize_range('orc_posts_brin', 0)
SELECT brin_desummarize_range('orc_posts_brin', 0)
SELECT gin_clean_pending_list('orc_posts_gin')
SELECT diesel_manage_updated_at('orc_users')
SELECT orc_s.diesel_manage_updated_at('orc_s.orc_posts')
SELECT lo_create(0)
SELECT lo_from_bytea(0, 'abc')
SELECT lo_put(lo_from_bytea(0, 'x'), 0, 'y')
SELECT 'nextval(1)', 'FOR UPDATE', 'INSERT INTO t', $$DELETE FROM t$$
SELECT 'it''s; DELETE FROM orc_users; --' AS s
SELECT E'it\'s; DELETE FROM orc_users' AS s
SELECT $tag$ ; DROP TABLE orc_users; $tag$
SELECT "name" AS "FOR UPDATE" FROM orc_users
SELECT 1 /* FOR UPDATE */, 2 -- FOR UPDATE
  , 3
SELECT 1 /* nested /* DELETE FROM orc_users; */ still a comment */
SELECT 2 # 3
SELECT 10 # 3 AS xor
SELECT name FROM orc_users WHERE id = 1 -- a comment; DELETE FROM orc_users
SELECT U&'\0041', B'101', X'1F', 1e3, .5
SELECT n.update, n.delete FROM (SELECT 1 AS update, 2 AS delete) n
SELECT t.insert FROM (SELECT 1 AS insert) t
// a function of the application that writes, routed by a hint
SELECT /* diesel_rw:primary */ orc_write('hinted')
/* diesel_rw:primary */ SELECT orc_write(name) FROM orc_users LIMIT 1
// CTEs
WITH x AS (SELECT 1 AS a) SELECT a FROM x
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r
WITH a AS (SELECT id FROM orc_users), b AS (SELECT user_id FROM orc_posts) SELECT * FROM a JOIN b ON a.id = b.user_id
WITH x AS MATERIALIZED (SELECT * FROM orc_users) SELECT count(*) FROM x
WITH x AS (INSERT INTO orc_log (msg) VALUES ('cte') RETURNING id) SELECT id FROM x
WITH x AS (DELETE FROM orc_log RETURNING *) SELECT count(*) FROM x
WITH x AS (UPDATE orc_users SET score = 0 RETURNING id) SELECT * FROM x
WITH x AS (SELECT 1 AS a) INSERT INTO orc_log (msg) SELECT a::text FROM x
WITH x AS (SELECT 1 AS a) UPDATE orc_users SET score = x.a FROM x
WITH x AS (SELECT 1 AS a) DELETE FROM orc_log USING x WHERE orc_log.id = x.a
WITH x AS (SELECT * FROM orc_users FOR UPDATE) SELECT * FROM x
WITH x AS (SELECT nextval('orc_seq')) SELECT * FROM x
WITH x AS (SELECT 1 AS a) SELECT * INTO orc_copy FROM x
// SELECT INTO, CREATE TABLE AS
SELECT * INTO orc_copy2 FROM orc_users
SELECT * INTO TEMP orc_tmp FROM orc_users
CREATE TABLE orc_copy3 AS SELECT * FROM orc_users
CREATE TEMP TABLE orc_tmp2 (a int)
// other reads
TABLE orc_users
TABLE orc_s.orc_posts
VALUES (1, 'a'), (2, 'b')
VALUES (1) UNION VALUES (2)
SHOW search_path
SHOW ALL
SHOW transaction_read_only
SHOW TRANSACTION ISOLATION LEVEL
SHOW server_version
// DDL
CREATE TABLE orc_new (id int PRIMARY KEY)
CREATE TABLE IF NOT EXISTS orc_users (id int)
CREATE UNLOGGED TABLE orc_unlogged (a int)
CREATE INDEX ON orc_users (name)
CREATE UNIQUE INDEX orc_users_email ON orc_users (email)
CREATE VIEW orc_v2 AS SELECT 1 AS a
CREATE OR REPLACE VIEW orc_v AS SELECT id, name FROM orc_users
CREATE SEQUENCE orc_seq2 START 100
CREATE FUNCTION orc_f2() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$
CREATE OR REPLACE FUNCTION orc_read(i int) RETURNS int LANGUAGE sql STABLE AS $$ SELECT i + 2 $$
CREATE TYPE orc_pair AS (a int, b text)
CREATE DOMAIN orc_positive AS int CHECK (VALUE > 0)
CREATE SCHEMA orc_other
CREATE EXTENSION IF NOT EXISTS pgcrypto
CREATE TRIGGER orc_trg BEFORE UPDATE ON orc_users FOR EACH ROW EXECUTE FUNCTION diesel_set_updated_at()
CREATE RULE orc_rule AS ON INSERT TO orc_v DO INSTEAD NOTHING
CREATE POLICY orc_pol ON orc_users USING (true)
CREATE ROLE orc_role
CREATE DATABASE orc_db
ALTER TABLE orc_users ADD COLUMN extra int
ALTER TABLE orc_users DROP COLUMN email
ALTER TABLE orc_users RENAME TO orc_people
ALTER TABLE orc_users ALTER COLUMN score SET DEFAULT 5
ALTER TABLE orc_posts ADD CONSTRAINT orc_title_len CHECK (length(title) < 1000)
ALTER SEQUENCE orc_seq RESTART WITH 1
ALTER INDEX orc_posts_brin RENAME TO orc_brin2
ALTER VIEW orc_v RENAME TO orc_v3
ALTER TYPE orc_mood ADD VALUE 'meh'
ALTER FUNCTION orc_read(int) IMMUTABLE
DROP TABLE orc_log
DROP TABLE IF EXISTS orc_nothing
DROP VIEW orc_v
DROP INDEX orc_posts_gin
DROP SEQUENCE orc_seq
DROP FUNCTION orc_read(int)
DROP TYPE orc_mood CASCADE
COMMENT ON TABLE orc_users IS 'people'
GRANT SELECT ON orc_users TO PUBLIC
REVOKE ALL ON orc_users FROM PUBLIC
REFRESH MATERIALIZED VIEW orc_mv
REINDEX TABLE orc_users
CLUSTER orc_users USING orc_users_pkey
VACUUM orc_log
VACUUM (ANALYZE) orc_users
ANALYZE orc_users
ANALYZE VERBOSE orc_posts
LOCK TABLE orc_users IN ACCESS SHARE MODE
LOCK TABLE orc_users IN ROW EXCLUSIVE MODE
LOCK orc_posts IN SHARE MODE NOWAIT
SECURITY LABEL ON TABLE orc_users IS 'x'
// procedures, DO, functions
CALL orc_proc('called')
CALL orc_noop()
DO $$ BEGIN PERFORM 1; END $$
DO $$ BEGIN INSERT INTO orc_s.orc_log (msg) VALUES ('do'); END $$
DO LANGUAGE plpgsql $body$ BEGIN RAISE NOTICE 'hi'; END $body$
// COPY
COPY orc_users TO STDOUT
COPY orc_users (id, name) TO STDOUT WITH (FORMAT csv, HEADER)
COPY orc_s.orc_posts TO STDOUT (FORMAT binary)
COPY "orc_users" TO STDOUT CSV HEADER
COPY (SELECT id, name FROM orc_users WHERE score > 3) TO STDOUT
COPY (WITH x AS (SELECT 1 AS a) SELECT * FROM x) TO STDOUT
COPY (VALUES (1), (2)) TO STDOUT
COPY (SELECT * FROM orc_users FOR UPDATE) TO STDOUT
COPY (SELECT nextval('orc_seq')) TO STDOUT
COPY (DELETE FROM orc_log RETURNING *) TO STDOUT
COPY (INSERT INTO orc_log (msg) VALUES ('c') RETURNING id) TO STDOUT
COPY (UPDATE orc_users SET score = 1 RETURNING id) TO STDOUT
COPY orc_log FROM STDIN
COPY orc_log (msg) FROM STDIN WITH (FORMAT csv)
// cursors
DECLARE orc_c CURSOR FOR SELECT * FROM orc_users
DECLARE orc_c SCROLL CURSOR WITH HOLD FOR SELECT id FROM orc_users
DECLARE orc_c CURSOR FOR SELECT * FROM orc_users FOR UPDATE
DECLARE orc_c CURSOR FOR SELECT * FROM orc_users; FETCH 2 FROM orc_c; MOVE NEXT IN orc_c; CLOSE orc_c
DECLARE orc_c CURSOR FOR SELECT * FROM orc_users; FETCH ALL FROM orc_c
CLOSE ALL
// prepared statements
PREPARE orc_p (int) AS SELECT * FROM orc_users WHERE id = $1
PREPARE orc_p AS SELECT 1; EXECUTE orc_p
PREPARE orc_p (text) AS INSERT INTO orc_log (msg) VALUES ($1); EXECUTE orc_p('prepared')
PREPARE orc_p AS UPDATE orc_users SET score = 2; EXECUTE orc_p
PREPARE orc_p AS DELETE FROM orc_log
DEALLOCATE ALL
// settings
SET search_path TO orc_s, public
SET LOCAL statement_timeout = '5s'
SET SESSION application_name = 'oracle'
SET TIME ZONE 'UTC'
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ
SET TRANSACTION READ WRITE
SET default_transaction_read_only = off
SET ROLE NONE
SET CONSTRAINTS ALL DEFERRED
RESET application_name
RESET ALL
// transaction control (the test's transaction is read-only; it is rolled back)
SAVEPOINT orc_sp
SAVEPOINT orc_sp; RELEASE SAVEPOINT orc_sp
SAVEPOINT orc_sp; ROLLBACK TO SAVEPOINT orc_sp
COMMIT
ROLLBACK
BEGIN
START TRANSACTION READ ONLY
END
ABORT
// LISTEN / NOTIFY
LISTEN orc_channel
UNLISTEN *
NOTIFY orc_channel
NOTIFY orc_channel, 'payload'
// several statements
SELECT 1; SELECT 2
SELECT 1; DELETE FROM orc_log
SELECT 'a;b'; SELECT "name" FROM orc_users
INSERT INTO orc_log (msg) VALUES ('one'); SELECT 1
SELECT 1;
// quoting and comment tricks
SELECT '/* DELETE FROM orc_log */'
SELECT "orc_users".name FROM orc_users WHERE name = 'x'' FOR UPDATE'
SELECT $$ $ $$, $a$ $$ $a$
/* leading */ -- and a line
  SELECT 1
SELECT/**/1
SELECT 1--1
SELECT * FROM orc_users /* FOR UPDATE */ WHERE id = 1
-- DELETE FROM orc_log
  SELECT 1

// [explain-forms]
EXPLAIN {}
EXPLAIN VERBOSE {}
EXPLAIN (COSTS OFF) {}
EXPLAIN (FORMAT JSON) {}
EXPLAIN (FORMAT YAML, VERBOSE) {}
EXPLAIN (ANALYZE) {}
EXPLAIN ANALYZE {}
EXPLAIN ANALYSE VERBOSE {}
EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {}
EXPLAIN (ANALYZE true, TIMING off) {}
explain (settings, summary) {}

// [explained]
SELECT * FROM orc_users WHERE id = 1
SELECT u.id, count(*) FROM orc_users u JOIN orc_posts p ON p.user_id = u.id GROUP BY u.id
SELECT * FROM orc_users FOR UPDATE
SELECT * FROM orc_users FOR SHARE
SELECT nextval('orc_seq')
INSERT INTO orc_log (msg) VALUES ('x')
INSERT INTO orc_users (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = excluded.name
UPDATE orc_users SET score = 3 WHERE id = 2
DELETE FROM orc_log WHERE id > 100
WITH x AS (DELETE FROM orc_log RETURNING *) SELECT * FROM x
WITH x AS (SELECT 1 AS a) SELECT * FROM x
VALUES (1), (2)
TABLE orc_users
MERGE INTO orc_users u USING (VALUES (1)) s (id) ON u.id = s.id WHEN MATCHED THEN DELETE

// [unseen]
// Calls of the application's own functions that write: the text does not show them. Run apart
// and asserted with the functions learned from the catalog (classify_sql_with), as a pool
// classifies them; without the catalog, route them with a hint (above).
SELECT orc_write('unseen')
SELECT orc_s.orc_write(name) FROM orc_users LIMIT 1
EXPLAIN ANALYZE SELECT orc_write('unseen')
SELECT * FROM orc_users WHERE orc_write(name) = 1
