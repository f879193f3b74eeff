"""The admin panel at `/admin`: SQLAdmin over the SQL records, behind Portico's own
sessions (superusers only), an address allow-list and its own CSRF protection.

Imported only when `PORTICO_ADMIN__ENABLED` is true (`entrypoints.asgi` composes it with
the API). Reads go straight to the tables; every write goes through a core service, so
the rules, the cache invalidation and the audit trail hold for operators too.
"""
