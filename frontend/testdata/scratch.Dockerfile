FROM scratch
WORKDIR /
COPY --chmod=0755 app /app
ENTRYPOINT ["/app"]
