"""Persistence: the models, the engine and sessions, the embedded cluster, migrations, COPY,
change counters and their listener.
"""
