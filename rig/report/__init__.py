"""What a run leaves and says: its directory (run_dir.py), each cell's verdict live and in
results.json (results.py, a pytest plugin), JUnit names (junit.py), and the summary table and
exit code of `hil run` (summary.py)."""
