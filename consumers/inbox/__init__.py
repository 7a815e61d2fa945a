"""The inbox: routed tasks of one municipality's units, for caseworkers to take over.

A Kafka feed stores each task once (task id primary key; offsets committed after the database
commit); a FastAPI page and JSON API show a caseworker the open tasks of their own unit; taking
over publishes ``task_taken_over`` to the municipality's own ``task-acks.<kommunekode>`` and is
recorded only once Kafka has it.
"""
