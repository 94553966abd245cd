// An OpenAI-compatible HTTP server (node:http) over one engine: POST /v1/chat/completions,
// POST /v1/completions (JSON, or server-sent events with `stream: true`), GET /v1/models.
// One model on one GPU: the engine's lock runs generations one at a time, first come first
// served; a client that disconnects aborts its generation (queued or running). Errors have
// OpenAI's shape; no request can take the server down.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AbortedError, ContextOverflowError, DeviceLostError, InvalidArgumentError } from '../errors.ts';
import { type OpenAIEngineOptions, OpenAIEngine } from '../openai/engine.ts';
import { InvalidParamError } from '../openai/params.ts';
import type { GenerateEngine, OpenAIErrorBody } from '../openai/types.ts';

export interface ServerOptions extends OpenAIEngineOptions {
  /** An engine with a model loaded (Engine, WorkerEngine), or an OpenAIEngine over one. */
  engine: GenerateEngine | OpenAIEngine;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default '127.0.0.1' (this machine only). */
  host?: string;
  /** Requests waiting or running at most; more are answered 429. Default 64. */
  maxPending?: number;
  /** Largest request body; default 4 MiB. */
  maxBodyBytes?: number;
  /** One line per request (method, path, status, ms), e.g. console.error. */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** http://host:port (the API is under /v1). */
  url: string;
  port: number;
  server: Server;
  /** Stops accepting, aborts the generations in flight and closes every connection. */
  close(): Promise<void>;
}

/** An error answered to a client: status and OpenAI's body. */
class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly type: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

function errorBody(e: HttpError): OpenAIErrorBody {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** A failure as the client sees it: the caller's mistakes 400, the rest 5xx. */
function httpErrorOf(error: unknown, promptParam = 'messages'): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof InvalidParamError) return new HttpError(400, error.message, 'invalid_request_error', error.param, error.openaiCode);
  if (error instanceof ContextOverflowError) return new HttpError(400, error.message, 'invalid_request_error', promptParam, 'context_length_exceeded');
  if (error instanceof InvalidArgumentError) {
    const parameter = (error as { parameter?: unknown }).parameter;
    return new HttpError(400, error.message, 'invalid_request_error', typeof parameter === 'string' ? `forkwise.${parameter}` : null, error.code);
  }
  if (error instanceof DeviceLostError) return new HttpError(503, error.message, 'server_error', null, error.code);
  return new HttpError(500, error instanceof Error ? error.message : String(error), 'server_error', null, null);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > limit) throw new HttpError(413, `the request body exceeds ${limit} bytes`, 'invalid_request_error', null, 'request_too_large');
    parts.push(part);
  }
  const text = Buffer.concat(parts).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'We could not parse the JSON body of your request: it must be one JSON object', 'invalid_request_error', null, 'invalid_json');
  }
}

/** Writes `data: …\n\n`, waiting while the socket's buffer is full; false once the client is gone. */
async function writeEvent(res: ServerResponse, data: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(`data: ${data}\n\n`)) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const ai = options.engine instanceof OpenAIEngine ? options.engine : new OpenAIEngine(options.engine, options);
  const host = options.host ?? '127.0.0.1';
  const maxPending = options.maxPending ?? 64;
  const maxBodyBytes = options.maxBodyBytes ?? 4 << 20;
  const active = new Set<AbortController>();
  let pending = 0;

  async function completion(req: IncomingMessage, res: ServerResponse, chat: boolean, controller: AbortController): Promise<number> {
    const body = await readJson(req, maxBodyBytes);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'the request body must be a JSON object', 'invalid_request_error', null, 'invalid_json');
    }
    if ('signal' in body) throw new InvalidParamError('signal', 'unknown parameter "signal"', 'unknown_parameter');
    const params = body as Record<string, unknown>;
    // Validation and the first generation's planning happen here, before any header is sent.
    const result = chat
      ? await ai.chat.completions.create(params as never, { signal: controller.signal })
      : await ai.completions.create(params as never, { signal: controller.signal });
    if (!params.stream) {
      sendJson(res, 200, result);
      return 200;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.flushHeaders();
    try {
      for await (const chunk of result as AsyncIterable<unknown>) {
        if (!(await writeEvent(res, JSON.stringify(chunk)))) return 499;
      }
    } catch (error) {
      if (controller.signal.aborted) return 499;
      // Headers are out: the error travels as an event (the openai client throws it as APIError).
      const e = httpErrorOf(error, chat ? 'messages' : 'prompt');
      await writeEvent(res, JSON.stringify(errorBody(e)));
      res.end();
      return e.status;
    }
    await writeEvent(res, '[DONE]');
    res.end();
    return 200;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const routes: Record<string, string> = { '/v1/chat/completions': 'POST', '/v1/completions': 'POST', '/v1/models': 'GET' };
    const model = /^\/v1\/models\/(.+)$/.exec(path);
    if (model && method === 'GET') {
      const found = ai.modelList().data.find((m) => m.id === decodeURIComponent(model[1]));
      if (!found) throw new HttpError(404, `The model '${decodeURIComponent(model[1])}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
      sendJson(res, 200, found);
      return 200;
    }
    if (!routes[path]) throw new HttpError(404, `Unknown request URL: ${method} ${path}`, 'invalid_request_error', null, 'unknown_url');
    if (routes[path] !== method) throw new HttpError(405, `${path} takes ${routes[path]}, not ${method}`, 'invalid_request_error', null, 'method_not_allowed');
    if (path === '/v1/models') {
      sendJson(res, 200, ai.modelList());
      return 200;
    }
    if (pending >= maxPending) throw new HttpError(429, `${pending} requests are waiting: try again later`, 'rate_limit_exceeded', null, 'too_many_requests');
    const controller = new AbortController();
    // The client going away (before its answer is complete) aborts its generation, queued or running.
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new AbortedError('the client disconnected'));
    };
    res.on('close', onClose);
    active.add(controller);
    pending++;
    try {
      return await completion(req, res, path === '/v1/chat/completions', controller);
    } finally {
      pending--;
      active.delete(controller);
      res.off('close', onClose);
    }
  }

  const server = createServer((req, res) => {
    const t0 = performance.now();
    handle(req, res).then(
      (status) => options.log?.(`${req.method} ${req.url} ${status} ${Math.round(performance.now() - t0)} ms`),
      (error) => {
        const e = httpErrorOf(error, req.url?.startsWith('/v1/completions') ? 'prompt' : 'messages');
        const gone = res.destroyed || (error instanceof AbortedError && !res.writable);
        if (!gone) sendJson(res, e.status, errorBody(e));
        else if (!res.writableEnded) res.end();
        options.log?.(`${req.method} ${req.url} ${gone ? 499 : e.status} ${Math.round(performance.now() - t0)} ms${e.status >= 500 ? ` ${e.message}` : ''}`);
      },
    );
  });
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    server,
    close: () => new Promise<void>((resolve) => {
      for (const controller of active) controller.abort(new AbortedError('the server is closing'));
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
