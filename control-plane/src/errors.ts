/** Every error the API answers with: a stable code, its HTTP status and a message safe to show. */
export const ErrorCode = {
  AUTH_MISSING_HEADER: 401,
  AUTH_INVALID_HEADER: 401,
  AUTH_UNKNOWN_KEY: 401,
  AUTH_KEY_DISABLED: 401,
  AUTH_BAD_SIGNATURE: 401,
  AUTH_EXPIRED_TIMESTAMP: 401,
  AUTH_REPLAYED_NONCE: 401,
  AUTH_NO_SESSION: 401,
  SIGN_IN_FAILED: 401,
  CSRF_FAILED: 403,
  APP_NOT_ALLOWED: 403,
  BAD_JSON: 400,
  VALIDATION_FAILED: 400,
  INVALID_TARGET: 400,
  INVALID_CONDITION: 400,
  EMPTY_NOTIFICATION: 400,
  MESSAGE_TOO_LARGE: 400,
  TTL_TOO_LONG: 400,
  SPREAD_TOO_LONG: 400,
  INVALID_KEY: 400,
  MISSING_PLACEHOLDER: 400,
  EMPTY_TEMPLATE: 400,
  PROFILE_LIMIT: 400,
  UNKNOWN_ATTRIBUTE: 400,
  INVALID_URL: 400,
  INVALID_SCHEDULE: 400,
  INVALID_CHANNEL: 400,
  DEVICE_NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  KEY_NOT_FOUND: 404,
  TEMPLATE_NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  CHANNEL_NOT_FOUND: 404,
  TOO_OLD_TO_REVOKE: 409,
  KEY_LIMIT: 409,
  LAST_ACTIVE_KEY: 409,
  ALREADY_FIRED: 409,
  NOT_FOUND: 404,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ErrorCode;

export class ApiError extends Error {
  readonly statusCode: number;
  /** The request field at fault, where there is one (forms show the message beside it). */
  readonly field: string | undefined;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; field?: string },
  ) {
    super(message, options);
    this.name = 'ApiError';
    this.statusCode = ErrorCode[code];
    this.field = options?.field;
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string };
}

export const errorBody = (code: ErrorCode, message: string, field?: string): ErrorBody => ({
  error: { code, message, ...(field !== undefined && { field }) },
});

/** The dotted path of the field the first schema violation is about (`targets.0.device`), if any. */
export function validationField(errors: readonly { instancePath: string; params: Record<string, unknown> }[]): string | undefined {
  const first = errors[0];
  if (!first) return undefined;
  const path = first.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  const named = first.params.missingProperty ?? first.params.additionalProperty;
  if (typeof named === 'string') path.push(named);
  return path.length > 0 ? path.join('.') : undefined;
}
