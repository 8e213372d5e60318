# LeadFlow image: the same image runs web (gunicorn), the Celery worker and Celery beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The source tree in /app (templates, static, manage.py) is the code that runs.
    PYTHONPATH=/app \
    LEADFLOW_VAR_DIR=/app/var

WORKDIR /app
RUN useradd --create-home --uid 1000 leadflow

COPY . .
RUN pip install . \
    && DEBUG=1 LEADFLOW_VAR_DIR=/tmp/leadflow-build python manage.py compile_catalogues \
    && mkdir -p /app/var && chown -R leadflow:leadflow /app/var

USER leadflow
EXPOSE 8000
CMD ["gunicorn", "leadflow.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
