"""Services: functions that decide and then write, callable alike from the API, the admin,
management commands and Celery tasks. They take plain values and models (never a request) with
keyword-only options; each interface turns their refusals into its own answer."""
