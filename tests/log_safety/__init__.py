"""The log-safety check: what the checked suites log holds none of the secrets they use.

`registry` collects every secret a test makes or is handed (process-wide), `capture`
collects what the process and the processes it starts log, `leaks` finds secrets and
secret-shaped strings in that text, and `plugin` ties them to pytest: a checked test
whose log output holds one fails at teardown, naming what leaked.
"""
