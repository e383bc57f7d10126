ALTER TABLE body_posts DROP COLUMN views;
