# sprocd node image. Installs with `npm ci` as the README says, but starts node itself rather than
# `npm start`: npm would stand between the container's signals and the node (SIGHUP never reached it,
# SIGTERM ended in npm error lines). Run it with an init as PID 1 that forwards signals and reaps
# children: docker-compose.yml sets `init: true`; with `docker run`, pass `--init`.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY tsconfig.json ./
# jobs/ and lifecycle/ are mounted by docker-compose.yml; the examples are the default.
COPY jobs ./jobs
COPY lifecycle ./lifecycle
# The node runs as the image's unprivileged `node` user and writes only backups/ (a volume in compose).
RUN mkdir -p backups && chown node:node backups
USER node
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
# Follows PORT, so a container started with another PORT is still judged by its own listener.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/sprocd.js", "start"]
