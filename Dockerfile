# tapbot: the Teams bot that issues Temporary Access Passes. Runtime image only (no tests, no dev tools).
#   docker build -t tapbot .
#   docker run -p 3978:3978 --env-file tapbot.env tapbot           # serve
#   docker run --rm --env-file tapbot.env tapbot python app.py doctor   # check the deployment
# Settings come from the environment at run time (README, "Settings"); nothing secret is baked into the image.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. pip compiles their bytecode as it installs.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The root CAs Azure Database for PostgreSQL's certificates chain to, from the base image's Debian trust store, for
# TAPBOT_DATABASE_TLS=verify-full with TAPBOT_DATABASE_CA_FILE=/app/certs/azure-postgresql-roots.pem (docs/deployment.md).
# cat fails the build if one is missing.
RUN mkdir -p /app/certs \
    && cat /etc/ssl/certs/DigiCert_Global_Root_CA.pem \
           /etc/ssl/certs/DigiCert_Global_Root_G2.pem \
           /etc/ssl/certs/Microsoft_RSA_Root_Certificate_Authority_2017.pem \
           > /app/certs/azure-postgresql-roots.pem

COPY app.py ./
COPY bot ./bot
COPY cards ./cards

# Compiled now: the app runs as a user that cannot write here, and start-up is about 1.4 s faster with .pyc files.
# var/ is only for the SQLite default of a local trial; deployments set TAPBOT_DATABASE_URL to PostgreSQL.
RUN python -m compileall -q app.py bot cards \
    && groupadd --system --gid 10001 tapbot \
    && useradd --system --uid 10001 --gid tapbot --home-dir /app --no-create-home --shell /usr/sbin/nologin tapbot \
    && mkdir -p /app/var \
    && chown tapbot:tapbot /app/var

USER 10001:10001

EXPOSE 3978

# Liveness only (no database, no Graph): /readyz is for the load balancer's readiness probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + (os.environ.get('TAPBOT_HEALTH_PORT') or os.environ.get('PORT', '3978')) + '/healthz', timeout=4)"]

CMD ["python", "app.py"]
