FROM busybox
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
RUN echo a | cat
CMD echo cmd
ENTRYPOINT exec server
