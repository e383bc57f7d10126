ALTER TABLE abody_posts DROP COLUMN views;
