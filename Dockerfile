# The job image: runs `python run_jobs.py` (configuration mounted at config/secrets, CSVs written to data/).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 USER=course-inventory
WORKDIR /app

# Every pinned dependency ships a manylinux wheel, so no compiler is needed.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# OpenShift runs the container as an arbitrary uid in group 0: let that group write data/.
RUN mkdir -p data config/secrets && chgrp -R 0 data && chmod -R g=u data

CMD ["python", "run_jobs.py"]
