/**
 * Generated from the PENNY Sandbox OpenAPI document by openapi-typescript: do not edit.
 * Regenerate with `npm run generate-types` (in clients/typescript); `npm run check-types` fails when stale.
 */

export interface paths {
    "/api/v1/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Execution records, newest first: jobs still open first, then finished ones by when they ended.
         * @description Filters: tenant, status, since, until (ISO 8601 or ms), limit (1..1000), cursor (from nextCursor).
         */
        get: operations["audit"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/execute": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Run code and answer with its ExecutionResult once it ends. */
        post: operations["execute"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/execute/stream": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Run code and stream its events (queued, started, stdout, stderr, plot, display, metrics, result) as SSE. */
        post: operations["execute_stream"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/jobs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Queue code to run; answer at once with the job id. */
        post: operations["create_job"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/jobs/{job_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Where the job is, and its ExecutionResult once final. */
        get: operations["get_job"];
        put?: never;
        post?: never;
        /** Cancel a job: a queued one never runs, a running one is killed. */
        delete: operations["cancel_job"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/jobs/{job_id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The job's events as SSE; Last-Event-ID (header or ?lastEventId=) resumes after that event. */
        get: operations["job_events"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The OpenAPI 3.1 description of this API (public: no key needed). */
        get: operations["openapi"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/packages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The allowlist (?search= in name or description, ?category=), with the preinstalled versions. */
        get: operations["list_packages"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/packages/install": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Install allowlisted packages into one session, in order with its executions. */
        post: operations["install_packages"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's sessions (live, and ended ones still retained). */
        get: operations["list_sessions"];
        put?: never;
        /** Create a session on the least loaded worker host, from its warm pool. */
        post: operations["create_session"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/sessions/{session_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The session's status, timestamps, execution count, variables and current resource use. */
        get: operations["get_session"];
        put?: never;
        post?: never;
        /** Delete the session: its sandbox is destroyed at once; later use is 404. */
        delete: operations["delete_session"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/sessions/{session_id}/files": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The directory `path` (default: /workspace itself): each entry's name, type, size (bytes), mtime. */
        get: operations["list_files"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/sessions/{session_id}/files/{file_path}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The file's bytes, streamed, with its content type and length. */
        get: operations["download_file"];
        /** Write the body (raw bytes, or a multipart form's file) to the path, creating parent directories. */
        put: operations["upload_file"];
        post?: never;
        /** Remove the file (or an empty directory). */
        delete: operations["delete_file"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/sessions/{session_id}/interrupt": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Stop the session's running execution with KeyboardInterrupt, keeping its namespace (as a notebook's
         * @description interrupt does). One sent just before is stopped too, before or as it starts; queued ones still run.
         */
        post: operations["interrupt_session"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/sessions/{session_id}/restart": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Replace the session's interpreter (variables gone; files and installed packages kept; same id),
         * @description after the executions sent before it; answers the new session view.
         */
        post: operations["restart_session"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/sessions/{session_id}/variables": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Set JSON values in the session's namespace (in order with its executions); the new summary. */
        put: operations["set_variables"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/validate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** {valid, errors, warnings} of the code; with strict, warnings count as errors too. */
        post: operations["validate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/version": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The service's package version and the API's version (public: no key needed). */
        get: operations["version"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        AuditPage: {
            records: {
                [key: string]: unknown;
            }[];
            count: number;
            nextCursor: string | null;
        };
        ApiError: {
            code: string;
            message: string;
            details: {
                [key: string]: unknown;
            };
        };
        ErrorEnvelope: {
            error: components["schemas"]["ApiError"];
        };
        InputFile: {
            path: string;
            /** @default null */
            content?: string | null;
            /** @default null */
            text?: string | null;
        };
        ExecuteRequest: {
            code: string;
            /** @default null */
            timeout?: number | null;
            variables?: {
                [key: string]: unknown;
            };
            /** @default null */
            sessionId?: string | null;
            /** @default null */
            packages?: string[] | null;
            plotFormats?: ("png" | "svg")[];
            /** @default false */
            strict?: boolean;
            /** @default  */
            stdin?: string;
            files?: components["schemas"]["InputFile"][];
            outputFiles?: string[];
        };
        Value: {
            type: string;
            repr: string;
            html?: string;
            json?: unknown;
            png?: string;
            svg?: string;
        };
        ExecutionError: {
            type: string;
            message: string;
            traceback: string[];
        };
        Metrics: {
            queuedMs: number;
            durationMs: number;
            cpuMs: number;
            peakMemoryBytes: number;
            diskBytes: number;
        };
        OutputFile: {
            /** @description relative to /workspace */
            path: string;
            /** @description bytes */
            size: number;
            /** @description the bytes, base64 */
            content: string;
        };
        ExecutionResult: {
            jobId: string;
            sessionId: string | null;
            /** @enum {string} */
            status: "success" | "error" | "timeout" | "memory_exceeded" | "output_limit" | "policy_violation" | "cancelled" | "worker_lost";
            stdout: string;
            stderr: string;
            truncated: boolean;
            result: components["schemas"]["Value"] | null;
            error: components["schemas"]["ExecutionError"] | null;
            plots: {
                [key: string]: unknown;
            }[];
            displays: {
                [key: string]: unknown;
            }[];
            notes: string[];
            variables: {
                [key: string]: unknown;
            };
            metrics: components["schemas"]["Metrics"];
            worker: string | null;
            /** @enum {string|null} */
            sessionState: "kept" | "lost" | null;
            packages: {
                [key: string]: unknown;
            } | null;
            findings: {
                [key: string]: unknown;
            }[];
            files?: components["schemas"]["OutputFile"][];
            /**
             * @description the isolation tier whose sandbox ran it (runc: the host's kernel; gvisor: gVisor's); null when no sandbox ran it
             * @enum {string|null}
             */
            isolation: "runc" | "gvisor" | null;
        };
        JobAccepted: {
            jobId: string;
            /** @enum {string} */
            status: "queued" | "running" | "success" | "error" | "timeout" | "memory_exceeded" | "output_limit" | "policy_violation" | "cancelled" | "worker_lost";
        };
        QueuedEvent: {
            jobId: string;
            /** @enum {string} */
            status: "queued";
        };
        StartedEvent: {
            jobId: string;
            worker: string;
        };
        OutputEvent: {
            text: string;
        };
        Plot: {
            /** @enum {string} */
            format: "png" | "svg" | "plotly";
            data: unknown;
            width?: number;
            height?: number;
        };
        Display: {
            type: string;
            repr: string;
            html?: string;
            json?: unknown;
            png?: string;
            svg?: string;
        };
        ResourceSample: {
            elapsedMs?: number;
            cpuPercent?: number | null;
            memoryBytes?: number | null;
            diskBytes?: number | null;
        };
        /** @description One Server-Sent Event once parsed: `event` names it, `data` is its payload, `id` resumes the stream after it. */
        JobEvent: {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "queued";
            data: components["schemas"]["QueuedEvent"];
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "started";
            data: components["schemas"]["StartedEvent"];
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "stdout";
            data: components["schemas"]["OutputEvent"];
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "stderr";
            data: components["schemas"]["OutputEvent"];
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "plot";
            data: components["schemas"]["Plot"];
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "display";
            data: components["schemas"]["Display"];
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "metrics";
            data: components["schemas"]["ResourceSample"];
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "result";
            data: components["schemas"]["ExecutionResult"];
        };
        /** @description One Server-Sent Event as sent: `id:`, `event:` and one `data:` line of JSON. A `: keepalive` comment line comes after 15 s without events. */
        JobEventMessage: {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "queued";
            data: string;
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "started";
            data: string;
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "stdout";
            data: string;
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "stderr";
            data: string;
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "plot";
            data: string;
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "display";
            data: string;
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "metrics";
            data: string;
        } | {
            /** @description the event id; send it as Last-Event-ID to resume after it */
            id: string;
            /** @constant */
            event: "result";
            data: string;
        };
        JobCancelled: {
            jobId: string;
            /** @enum {string} */
            status: "queued" | "running" | "success" | "error" | "timeout" | "memory_exceeded" | "output_limit" | "policy_violation" | "cancelled" | "worker_lost";
            cancelRequested?: boolean;
        };
        Job: {
            jobId: string;
            /** @enum {string} */
            status: "queued" | "running" | "success" | "error" | "timeout" | "memory_exceeded" | "output_limit" | "policy_violation" | "cancelled" | "worker_lost";
            worker?: string | null;
            /**
             * @description the result's isolation tier once the job ended; null before
             * @enum {string|null}
             */
            isolation: "runc" | "gvisor" | null;
            result?: components["schemas"]["ExecutionResult"] | null;
        };
        Package: {
            name: string;
            category: string;
            allowedVersions: string;
            description: string;
            version: string | null;
            preinstalled: boolean;
        };
        PackageList: {
            packages: components["schemas"]["Package"][];
        };
        PackageInstall: {
            sessionId: string;
            packages: string[];
            /** @default false */
            force?: boolean;
        };
        InstalledPackage: {
            name: string;
            version: string;
        };
        FailedPackage: {
            name: string;
            reason: string;
        };
        InstallReport: {
            installed: components["schemas"]["InstalledPackage"][];
            failed: components["schemas"]["FailedPackage"][];
        };
        Session: {
            sessionId: string;
            /** @enum {string} */
            status: "starting" | "ready" | "busy" | "lost" | "expired";
            createdAt: string;
            lastUsedAt: string;
            expiresAt: string;
            executionCount: number;
            variables: {
                [key: string]: unknown;
            };
            packages: string[];
            resources: {
                [key: string]: unknown;
            };
            worker: string;
            /**
             * @description the isolation tier of the session's sandbox (its tenant's when it was created)
             * @enum {string}
             */
            isolation: "runc" | "gvisor";
        };
        SessionList: {
            sessions: components["schemas"]["Session"][];
        };
        SessionCreate: {
            /** @default null */
            packages?: string[] | null;
            variables?: {
                [key: string]: unknown;
            };
        };
        SessionCreated: {
            sessionId: string;
            createdAt: string;
            expiresAt: string;
            worker: string;
            /** @enum {string} */
            status: "starting" | "ready" | "busy" | "lost" | "expired";
            /**
             * @description the isolation tier of the session's sandbox
             * @enum {string}
             */
            isolation: "runc" | "gvisor";
        };
        FileEntry: {
            name: string;
            /** @enum {string} */
            type: "file" | "directory" | "symlink" | "other";
            /** @description bytes */
            size: number;
            /** @description last modified, ms since the epoch */
            mtime: number;
        };
        FileList: {
            /** @description the directory, relative to /workspace */
            path: string;
            entries: components["schemas"]["FileEntry"][];
            /** @description more entries than the 1000 listed */
            truncated: boolean;
        };
        FileUploaded: {
            path: string;
            /** @description bytes written */
            size: number;
            /** @description the audited job of the upload */
            jobId: string;
        };
        Interrupt: {
            sessionId: string;
            /** @description the job stopped; null when none was running or queued */
            interrupted: string | null;
            /**
             * @description its final status
             * @default null
             */
            status?: string | null;
            /** @default null */
            sessionState?: string | null;
        };
        SessionVariables: {
            variables: {
                [key: string]: unknown;
            };
        };
        Variables: {
            variables: {
                [key: string]: unknown;
            };
        };
        Validate: {
            code: string;
            /** @default false */
            strict?: boolean;
            /** @default true */
            includeWarnings?: boolean;
        };
        Finding: {
            line: number;
            col: number;
            rule: string;
            message: string;
        };
        Analysis: {
            valid: boolean;
            errors: components["schemas"]["Finding"][];
            warnings: components["schemas"]["Finding"][];
        };
        Version: {
            /** @description penny-sandbox's version (PEP 440) */
            version: string;
            /** @description the version of this API contract (info.version) */
            apiVersion: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    audit: {
        parameters: {
            query?: {
                /** @description only this tenant's records */
                tenant?: string;
                /** @description only jobs with this status (empty: any) */
                status?: "" | "queued" | "running" | "success" | "error" | "timeout" | "memory_exceeded" | "output_limit" | "policy_violation" | "cancelled" | "worker_lost";
                /** @description from this time on: ISO 8601 (UTC without a zone) or ms since the epoch */
                since?: string;
                /** @description up to this time: ISO 8601 (UTC without a zone) or ms since the epoch */
                until?: string;
                /** @description records per page */
                limit?: number;
                /** @description the nextCursor of the previous page */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description one page of records, newest first */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuditPage"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    execute: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "code": "import math\nprint(math.pi)\nmath.e",
                 *       "timeout": 5000
                 *     }
                 */
                "application/json": components["schemas"]["ExecuteRequest"];
            };
        };
        responses: {
            /** @description the ExecutionResult (also when the code raised: its status says how it ended) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ExecutionResult"];
                };
            };
            /** @description accepted but not ended within its timeout plus 120 s of queueing: follow it by id */
            202: {
                headers: {
                    /** @description /api/v1/jobs/{jobId}: where to follow the job */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobAccepted"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unsupported_media_type`: the body is not sent as application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `policy_violation`: strict mode: the code breaks the policy (details lists the findings) */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    execute_stream: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "code": "import math\nprint(math.pi)\nmath.e",
                 *       "timeout": 5000
                 *     }
                 */
                "application/json": components["schemas"]["ExecuteRequest"];
            };
        };
        responses: {
            /** @description the job's events, each with an `id:`; the stream ends after `result`, whose data is the ExecutionResult. A `: keepalive` comment comes every 15 s of silence. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": components["schemas"]["JobEventMessage"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unsupported_media_type`: the body is not sent as application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `policy_violation`: strict mode: the code breaks the policy (details lists the findings) */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    create_job: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "code": "import math\nprint(math.pi)\nmath.e",
                 *       "timeout": 5000
                 *     }
                 */
                "application/json": components["schemas"]["ExecuteRequest"];
            };
        };
        responses: {
            /** @description queued */
            202: {
                headers: {
                    /** @description /api/v1/jobs/{jobId}: where to follow the job */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobAccepted"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unsupported_media_type`: the body is not sent as application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `policy_violation`: strict mode: the code breaks the policy (details lists the findings) */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    get_job: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                job_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the job */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    cancel_job: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                job_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description cancelled, or (cancelRequested) was running and has been stopped */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobCancelled"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    job_events: {
        parameters: {
            query?: {
                /** @description the same as the Last-Event-ID header, for clients that cannot set it */
                lastEventId?: string;
            };
            header?: {
                /** @description resume after this event id (as EventSource sends it on a reconnect) */
                "Last-Event-ID"?: string;
            };
            path: {
                job_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the job's events, each with an `id:`; the stream ends after `result`, whose data is the ExecutionResult. A `: keepalive` comment comes every 15 s of silence. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": components["schemas"]["JobEventMessage"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    openapi: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description this document (OpenAPI 3.1) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    list_packages: {
        parameters: {
            query?: {
                /** @description a word in the name or description */
                search?: string;
                /** @description only this category */
                category?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the allowlisted packages, by name */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PackageList"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    install_packages: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "sessionId": "<sessionId>",
                 *       "packages": [
                 *         "tabulate"
                 *       ]
                 *     }
                 */
                "application/json": components["schemas"]["PackageInstall"];
            };
        };
        responses: {
            /** @description what was installed, and what was not with why */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["InstallReport"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unsupported_media_type`: the body is not sent as application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    list_sessions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the caller's sessions */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionList"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    create_session: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: {
            content: {
                /**
                 * @example {
                 *       "packages": [],
                 *       "variables": {
                 *         "rows": [
                 *           1,
                 *           2,
                 *           3
                 *         ]
                 *       }
                 *     }
                 */
                "application/json": components["schemas"]["SessionCreate"];
            };
        };
        responses: {
            /** @description created and ready */
            201: {
                headers: {
                    /** @description /api/v1/sessions/{sessionId} */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionCreated"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unsupported_media_type`: the body is not sent as application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    get_session: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the session */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Session"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    delete_session: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    list_files: {
        parameters: {
            query?: {
                /** @description the directory, relative to /workspace (default: /workspace) */
                path?: string;
            };
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the directory's entries, by name */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FileList"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    download_file: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
                file_path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the file's bytes (application/octet-stream or the type its name suggests) */
            200: {
                headers: {
                    /** @description bytes */
                    "Content-Length"?: string;
                    /** @description the audited job of the download */
                    "X-Penny-Job-Id"?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    upload_file: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
                file_path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description written */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FileUploaded"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    delete_file: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
                file_path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description removed */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    interrupt_session: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description what was interrupted */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Interrupt"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    restart_session: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the session with its new interpreter */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Session"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    set_variables: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "variables": {
                 *         "threshold": 0.5
                 *       }
                 *     }
                 */
                "application/json": components["schemas"]["SessionVariables"];
            };
        };
        responses: {
            /** @description the session's variables after the change */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Variables"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `forbidden`: the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit trail */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `not_found`: no such job or session for this key's tenant (another tenant's is not found either) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `conflict`: the job or session is in a state that forbids it (a session lost or expired, a job already ended) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description the request line (path and query) is longer than the HTTP server accepts (4094 bytes); answered by the server itself, as HTML */
            414: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description `unsupported_media_type`: the body is not sent as application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    validate: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "code": "import os\nos.system('ls')"
                 *     }
                 */
                "application/json": components["schemas"]["Validate"];
            };
        };
        responses: {
            /** @description the findings; valid is false when there is an error */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Analysis"];
                };
            };
            /** @description `validation_error`: the request is invalid (details.fields names each bad field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unauthorized`: no valid API key: send `Authorization: Bearer <key>` */
            401: {
                headers: {
                    /** @description Bearer realm="penny" */
                    "WWW-Authenticate"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `payload_too_large`: the body (or its code) is larger than the service accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unsupported_media_type`: the body is not sent as application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `overloaded`: too many requests or jobs: retry after Retry-After seconds */
            429: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
            /** @description `unavailable`: the service cannot take the request now (Redis, the queue or the workers): retry after Retry-After seconds */
            503: {
                headers: {
                    /** @description seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorEnvelope"];
                };
            };
        };
    };
    version: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the versions */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "version": "0.1.0",
                     *       "apiVersion": "1.0.0"
                     *     }
                     */
                    "application/json": components["schemas"]["Version"];
                };
            };
        };
    };
}
