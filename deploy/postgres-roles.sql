-- Two PostgreSQL roles, each owning one database and nothing else: Dagster's storage (runs,
-- events, schedules) and the warehouse the syncs write and the ERP reads. Neither is a
-- superuser, neither can create roles or databases, and neither can even connect to the
-- other's database. Run it as a superuser or, on a managed server, its admin role (one with
-- CREATEROLE and CREATEDB, which the script makes a member of both roles) with psql:
--
--   export DAGSTER_PG_PASSWORD=... LSS_WAREHOUSE_PASSWORD=...    # read with psql 15's \getenv
--   psql "host=... user=postgres dbname=postgres sslmode=verify-full" -f deploy/postgres-roles.sql \
--     -v dagster_role=dagster -v dagster_db=dagster \
--     -v warehouse_role=lss_warehouse -v warehouse_db=warehouse -v reader_role=lss_reader
--
-- The passwords come from those two environment variables (so they are not on a command line
-- that `ps` shows), or from -v dagster_password=... / -v warehouse_password=... .
-- Each part runs only when its variables are given (compose's deploy/postgres-init.sh gives only
-- the warehouse's: Dagster's storage there stays with the image's own user). It converges: run it
-- again at any time, e.g. on a database created before the roles were separate, and it takes
-- the tables in the warehouse's `public` schema over for the warehouse role.
-- reader_role (optional) is a NOLOGIN group for the ERP and reports: SELECT on every warehouse
-- table, now and in future migrations; grant it to their login roles (GRANT lss_reader TO erp).
\set ON_ERROR_STOP on
\set QUIET on

-- The parts asked for, each a role and its database, with the role's password: -v, else its
-- environment variable, else '' (refused below).
CREATE TEMP TABLE lss_parts (part text, role text, db text, password text, env_variable text);
\if :{?dagster_role}
  \if :{?dagster_password} \else \set dagster_password '' \getenv dagster_password DAGSTER_PG_PASSWORD \endif
  INSERT INTO lss_parts
    VALUES ('dagster', :'dagster_role', :'dagster_db', :'dagster_password', 'DAGSTER_PG_PASSWORD');
\endif
\if :{?warehouse_role}
  \if :{?warehouse_password} \else \set warehouse_password '' \getenv warehouse_password LSS_WAREHOUSE_PASSWORD \endif
  INSERT INTO lss_parts
    VALUES ('warehouse', :'warehouse_role', :'warehouse_db', :'warehouse_password', 'LSS_WAREHOUSE_PASSWORD');
\endif

DO $$
DECLARE
  part record;
BEGIN
  -- Every password first: a part without one stops the script before anything is made.
  FOR part IN SELECT * FROM lss_parts WHERE password = '' LOOP
    RAISE EXCEPTION '% (or -v %_password=...) must be set: the password of role %_role',
      part.env_variable, part.part, part.part;
  END LOOP;
  FOR part IN SELECT * FROM lss_parts LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = part.role) THEN
      EXECUTE format('CREATE ROLE %I', part.role);
    END IF;
    -- Only where a role made before has more: naming the attributes at all takes a superuser.
    IF EXISTS (
      SELECT FROM pg_roles WHERE rolname = part.role
         AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)
    ) THEN
      EXECUTE format('ALTER ROLE %I WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
                     part.role);
    END IF;
    -- An admin that is not a superuser (a managed server's) must be a member of a role to make
    -- it a database's owner.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = CURRENT_USER)
       AND NOT pg_has_role(CURRENT_USER, part.role, 'MEMBER') THEN
      EXECUTE format('GRANT %I TO CURRENT_USER', part.role);
    END IF;
  END LOOP;
END $$;
-- Not in the DO block: an error there would print the statement, password and all.
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', role, password) FROM lss_parts \gexec

-- CREATE DATABASE cannot run inside the DO block's transaction.
SELECT format('CREATE DATABASE %I OWNER %I', db, role)
  FROM lss_parts WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db) \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', db, role), format('REVOKE ALL ON DATABASE %I FROM PUBLIC', db)
  FROM lss_parts \gexec

-- Each database's public schema is its role's alone.
\if :{?dagster_role}
  \connect :"dagster_db"
  ALTER SCHEMA public OWNER TO :"dagster_role";
  REVOKE ALL ON SCHEMA public FROM PUBLIC;
\endif

\if :{?warehouse_role}
  \connect :"warehouse_db"
  ALTER SCHEMA public OWNER TO :"warehouse_role";
  REVOKE ALL ON SCHEMA public FROM PUBLIC;
  -- Tables made by another role before (one shared user): the migrations' role must own them.
  -- A table's sequences follow it.
  SELECT format('ALTER TABLE public.%I OWNER TO %I', tablename, :'warehouse_role')
    FROM pg_tables WHERE schemaname = 'public' AND tableowner <> :'warehouse_role' \gexec

  \if :{?reader_role}
    SELECT format('CREATE ROLE %I NOLOGIN', :'reader_role')
     WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader_role') \gexec
    GRANT CONNECT ON DATABASE :"warehouse_db" TO :"reader_role";
    GRANT USAGE ON SCHEMA public TO :"reader_role";
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader_role";
    ALTER DEFAULT PRIVILEGES FOR ROLE :"warehouse_role" IN SCHEMA public
      GRANT SELECT ON TABLES TO :"reader_role";
  \endif
\endif
