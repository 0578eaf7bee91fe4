FROM configured
RUN echo "$FOO $PATH"
ENTRYPOINT ["/entry"]
