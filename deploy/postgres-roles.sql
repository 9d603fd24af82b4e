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

\if :{?dagster_role}
  \if :{?dagster_password}
  \else
    \getenv dagster_password DAGSTER_PG_PASSWORD
  \endif
  \if :{?dagster_password}
  \else
    DO $$ BEGIN RAISE EXCEPTION 'DAGSTER_PG_PASSWORD (or -v dagster_password=...) must be set: the password of role dagster_role'; END $$;
  \endif
  SELECT format('CREATE ROLE %I', :'dagster_role')
   WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'dagster_role') \gexec
  -- Only where a role made before has more: naming the attributes at all takes a superuser.
  SELECT format('ALTER ROLE %I WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', rolname)
    FROM pg_roles WHERE rolname = :'dagster_role'
     AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls) \gexec
  ALTER ROLE :"dagster_role" WITH LOGIN PASSWORD :'dagster_password';
  -- An admin that is not a superuser (a managed server's) must be a member of a role to make
  -- it a database's owner.
  SELECT format('GRANT %I TO CURRENT_USER', :'dagster_role')
   WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = CURRENT_USER)
     AND NOT pg_has_role(CURRENT_USER, :'dagster_role', 'MEMBER') \gexec
  SELECT format('CREATE DATABASE %I OWNER %I', :'dagster_db', :'dagster_role')
   WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dagster_db') \gexec
  ALTER DATABASE :"dagster_db" OWNER TO :"dagster_role";
  REVOKE ALL ON DATABASE :"dagster_db" FROM PUBLIC;
  \connect :"dagster_db"
  ALTER SCHEMA public OWNER TO :"dagster_role";
  REVOKE ALL ON SCHEMA public FROM PUBLIC;
\endif

\if :{?warehouse_role}
  \if :{?warehouse_password}
  \else
    \getenv warehouse_password LSS_WAREHOUSE_PASSWORD
  \endif
  \if :{?warehouse_password}
  \else
    DO $$ BEGIN RAISE EXCEPTION 'LSS_WAREHOUSE_PASSWORD (or -v warehouse_password=...) must be set: the password of role warehouse_role'; END $$;
  \endif
  SELECT format('CREATE ROLE %I', :'warehouse_role')
   WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'warehouse_role') \gexec
  -- Only where a role made before has more: naming the attributes at all takes a superuser.
  SELECT format('ALTER ROLE %I WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', rolname)
    FROM pg_roles WHERE rolname = :'warehouse_role'
     AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls) \gexec
  ALTER ROLE :"warehouse_role" WITH LOGIN PASSWORD :'warehouse_password';
  -- An admin that is not a superuser (a managed server's) must be a member of a role to make
  -- it a database's owner.
  SELECT format('GRANT %I TO CURRENT_USER', :'warehouse_role')
   WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = CURRENT_USER)
     AND NOT pg_has_role(CURRENT_USER, :'warehouse_role', 'MEMBER') \gexec
  SELECT format('CREATE DATABASE %I OWNER %I', :'warehouse_db', :'warehouse_role')
   WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'warehouse_db') \gexec
  ALTER DATABASE :"warehouse_db" OWNER TO :"warehouse_role";
  REVOKE ALL ON DATABASE :"warehouse_db" FROM PUBLIC;
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
