// A gRPC proxy in front of a live ledgerd that forwards the client's bytes and metadata as
// they are (so signatures stay valid) and can fail chosen attempts: for the retry tests.
import { Client, credentials, Server, ServerCredentials, status } from "@grpc/grpc-js";
import { BalanceService, methodPath } from "../../dist/index.js";

const same = (bytes) => bytes;

/**
 * `decide(attempt)` for every call reaching the proxy: "forward"; "forward-then-unavailable"
 * (the server does the work, the client hears UNAVAILABLE: a lost answer); or "unavailable".
 * `attempts` records each call: its method, body and metadata.
 */
export async function startProxy(target, decide) {
  const upstream = new Client(target, credentials.createInsecure());
  const attempts = [];
  const service = {};
  for (const method of BalanceService.methods) {
    if (method.methodKind !== "unary") continue;
    const path = methodPath(method);
    service[method.localName] = {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: same,
      requestDeserialize: same,
      responseSerialize: same,
      responseDeserialize: same,
    };
  }
  const handlers = Object.fromEntries(
    Object.entries(service).map(([name, definition]) => [
      name,
      (call, callback) => {
        const attempt = {
          path: definition.path,
          body: Buffer.from(call.request),
          metadata: call.metadata.getMap(),
        };
        attempts.push(attempt);
        const decision = decide(attempts.length - 1, attempt);
        if (decision === "unavailable") {
          callback({ code: status.UNAVAILABLE, details: "proxy: injected failure" });
          return;
        }
        const forwarded = call.metadata.clone();
        upstream.makeUnaryRequest(
          definition.path,
          same,
          same,
          call.request,
          forwarded,
          { deadline: call.getDeadline() },
          (error, answer) => {
            if (decision === "forward-then-unavailable") {
              callback({ code: status.UNAVAILABLE, details: "proxy: answer lost" });
            } else {
              callback(error, answer);
            }
          },
        );
      },
    ]),
  );
  const server = new Server();
  server.addService(service, handlers);
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return {
    target: `127.0.0.1:${port}`,
    attempts,
    close() {
      upstream.close();
      server.forceShutdown();
    },
  };
}
