-- Secrets shared by every app instance on this database (the CSRF signing key).
CREATE TABLE app_secrets (
    name  text PRIMARY KEY,
    value text NOT NULL
);
