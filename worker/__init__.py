"""Batch processing: the Huey tasks and the consumer process that runs them.

`python -m worker` starts a consumer; any number may run, on any number of
hosts, against the same database.
"""
