DROP TABLE body_posts;
DROP TABLE body_users;
