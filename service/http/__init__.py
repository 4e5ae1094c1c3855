"""HTTP plumbing: middlewares (access, limits, telemetry), the route class and its direct calls, dependencies,
input decoding, responses written from arrays, and the uvicorn server."""
