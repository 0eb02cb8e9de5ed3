"""Django's PostgreSQL backend (psycopg 3) with a health check of kept connections that costs no round trip."""
