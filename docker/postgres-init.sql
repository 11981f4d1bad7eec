-- Databases besides the hub's own (POSTGRES_DB yekuo): the simulated PMS and the scenario runner's hub.
CREATE DATABASE pms;
CREATE DATABASE scenario;
