"""The program inside every sandbox container (standard library only).

It reads framed requests on stdin, runs each in a forked kernel process, streams that process's output
back on stdout, and reports how the run ended. See supervisor.py for the isolation mechanism.
"""
