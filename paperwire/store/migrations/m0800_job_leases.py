"""Jobs run by any number of workers on any number of nodes: a lease per job row, and
change notifications for the nodes' index replicas.

* ``worker_jobs.owner`` / ``lease_until``: the worker that claimed the job and until when
  (UTC, ISO) its claim holds. It renews the lease while it works; when it dies, the lease
  runs out and another worker takes the job over (:mod:`paperwire.store.jobs`).
* PostgreSQL only: a trigger on ``meta`` sends ``NOTIFY paperwire_rev`` whenever the store
  revision (``rev``: papers, votes, hides) or the web revision (``web_rev``) moves, so web
  nodes catch their tantivy and vector replicas up at once instead of on the next poll
  (:mod:`paperwire.index.follow`). The notification is sent at commit, by whichever
  process wrote: a web node, a worker, an import, ``db copy``.
"""

from paperwire.store.dialect import is_postgres

CHANNEL = "paperwire_rev"

PG_SQL = (
    "CREATE OR REPLACE FUNCTION paperwire_notify_rev() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_notify('" + CHANNEL + "', NEW.key || ' ' || NEW.value); RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS paperwire_rev_notify ON meta",
    "CREATE TRIGGER paperwire_rev_notify AFTER INSERT OR UPDATE ON meta FOR EACH ROW "
    "WHEN (NEW.key IN ('rev', 'web_rev')) EXECUTE FUNCTION paperwire_notify_rev()",
)


def apply(conn) -> None:
    """Add the lease columns (both engines) and the change trigger (PostgreSQL)."""
    conn.execute("ALTER TABLE worker_jobs ADD COLUMN owner TEXT")
    conn.execute("ALTER TABLE worker_jobs ADD COLUMN lease_until TEXT")
    if is_postgres(conn):
        for statement in PG_SQL:
            conn.execute(statement)
