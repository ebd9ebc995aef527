-- runs once, when the node's data folder is created (after the PostGIS image's own script)
CREATE EXTENSION IF NOT EXISTS citus;
CREATE EXTENSION IF NOT EXISTS postgis;
