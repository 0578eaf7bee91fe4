FROM busybox
RUN <<EOF
echo one
echo two
EOF
RUN cat <<EOT > /file
content
EOT
