DROP TABLE abody_posts;
DROP TABLE abody_users;
