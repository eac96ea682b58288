"""The parts of run_jobs.py: stopping, calling entry functions, one job attempt, the preflight check."""
