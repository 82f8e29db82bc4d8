-- The monitoring store (prediction log, feedback labels) lives beside MLflow's database.
CREATE DATABASE monitor;
