/**
 * Errors raised by the SDK.
 *
 * `MatchlockError` is the base class for everything the SDK itself reports
 * (bad options, a dead `matchlock rpc` process, a CLI helper that failed).
 * `RPCError` carries a JSON-RPC error object returned by the server.
 */

export class MatchlockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MatchlockError";
  }
}

/** JSON-RPC error codes used by `matchlock rpc` (contract/rpc.json "errors"). */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_INTERNAL_ERROR = -32603;
export const RPC_VM_FAILED = -32000;
export const RPC_EXEC_FAILED = -32001;
export const RPC_FILE_FAILED = -32002;
export const RPC_CANCELLED = -32003;

export class RPCError extends MatchlockError {
  static readonly PARSE_ERROR = RPC_PARSE_ERROR;
  static readonly INVALID_REQUEST = RPC_INVALID_REQUEST;
  static readonly METHOD_NOT_FOUND = RPC_METHOD_NOT_FOUND;
  static readonly INVALID_PARAMS = RPC_INVALID_PARAMS;
  static readonly INTERNAL_ERROR = RPC_INTERNAL_ERROR;
  static readonly VM_FAILED = RPC_VM_FAILED;
  static readonly EXEC_FAILED = RPC_EXEC_FAILED;
  static readonly FILE_FAILED = RPC_FILE_FAILED;
  static readonly CANCELLED = RPC_CANCELLED;

  /** The JSON-RPC error code (see the RPC_* constants). */
  readonly code: number;
  /** The server's message, without the `[code]` prefix that `message` carries. */
  readonly rpcMessage: string;

  constructor(code: number, message: string) {
    super(`[${code}] ${message}`);
    this.name = "RPCError";
    this.code = code;
    this.rpcMessage = message;
  }

  isVMError(): boolean {
    return this.code === RPC_VM_FAILED;
  }

  isExecError(): boolean {
    return this.code === RPC_EXEC_FAILED;
  }

  isFileError(): boolean {
    return this.code === RPC_FILE_FAILED;
  }

  isCancelled(): boolean {
    return this.code === RPC_CANCELLED;
  }
}
