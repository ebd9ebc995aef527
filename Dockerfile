# citygrid API image (used by docker-compose.yml)
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends gdal-bin \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service service
COPY gis gis
COPY layers layers
COPY demo demo
COPY alembic alembic
RUN pip install --no-cache-dir -e .
ENV CITYGRID_HOST=0.0.0.0
EXPOSE 8000
CMD ["citygrid", "serve", "--host", "0.0.0.0", "--port", "8000"]
