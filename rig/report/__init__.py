"""What a run leaves and says, read from what the pytest plugin wrote (results.json, farm.json,
the run directory's files; this stage never imports the plugin): the run directory and the
names of its files (run_dir.py), the summary table and exit code of `hil run` (summary.py),
the runner's load (runner_load.py), the environment (environment.py), and report.html with
history and trends (build.py, history.py, trends.py, page.py, plots.py)."""
