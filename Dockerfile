# One image for the hub and the simulators; docker-compose.yml picks the command.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends tzdata && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ground ground
COPY canonical_model canonical_model
COPY adapters adapters
COPY mappings mappings
COPY routes routes
COPY bus bus
COPY pipeline pipeline
COPY store store
COPY workflow workflow
COPY feasibility feasibility
COPY forecast forecast
COPY assistant assistant
COPY knowledge knowledge
COPY api api
COPY simulators simulators
COPY subscriptions subscriptions
COPY scenarios scenarios
COPY yekuo yekuo
RUN pip install --no-cache-dir -e .
ENV YEKUO_CONFIG_DIR=/app
ENTRYPOINT ["yekuo"]
