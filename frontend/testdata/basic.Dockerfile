# syntax=docker/dockerfile:1
FROM busybox
MAINTAINER Jane Doe <jane@example.com>
ENV APP=/app GREETING="hello world"
WORKDIR $APP
COPY main.go go.mod ./
ADD config.json /etc/app/
RUN echo "$GREETING" > /greeting && \
    chmod 644 /greeting
RUN ["/bin/echo", "exec form"]
RUN --network=none true
USER 1000:1000
LABEL org.opencontainers.image.title="demo app" version=1.0
EXPOSE 8080 53/udp
VOLUME ["/data", "/cache"]
VOLUME /logs /tmp/x
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD wget -q -O- http://localhost:8080/ || exit 1
ONBUILD RUN echo child build
CMD ["serve", "--port=8080"]
