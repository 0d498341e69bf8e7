"""Operate what c3po builds: load a program on live interfaces and drive its tables, counters and registers at
run time, by name, with one API for every target (issue 13).

`dataplane.api` holds the target-neutral API (`Dataplane`, `Table`, `Entry`); each target implements it in its own
folder (`targets/<target>/control.py`); `dataplane.syntax` reads keys and values as specs and vectors write them;
`dataplane.registry` records what is loaded (`/run/c3po/<name>/`); `dataplane.cli` is `c3po load/unload/status/
table/counter/register/apply/dump`.
"""
