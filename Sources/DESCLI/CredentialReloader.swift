import DESServer
import Logging
import ServiceLifecycle
import UnixSignals

/// `des serve` on SIGHUP: reads the config file again and puts its credentials in force — the
/// static tokens (`server.auth_tokens`, `DES_SERVER_TOKENS`) and the JWT keys and rules of
/// `server.jwt` (its JWKS and PEM files read again). Requests already in flight finish under the
/// old ones. A config that no longer loads, or keys that cannot be read, change nothing: the
/// error is logged and the credentials in force stay. Other keys take a restart.
struct CredentialReloader: Service {
    let signals: UnixSignalsSequence
    let server: DESHTTPServer
    let load: @Sendable () throws -> ServerCredentials
    let logger: Logger

    /// Traps SIGHUP now (before the listener starts), so that a SIGHUP at any time after this
    /// reloads instead of ending the process.
    static func trapping(server: DESHTTPServer, logger: Logger, load: @escaping @Sendable () throws -> ServerCredentials) async -> CredentialReloader {
        CredentialReloader(signals: await UnixSignalsSequence(trapping: .sighup), server: server, load: load, logger: logger)
    }

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                let credentials = try load()
                if server.checksCredentials && !credentials.isConfigured {
                    // An edit that lost every token would open the API: that takes a restart, not a signal.
                    logger.error(
                        "credentials not reloaded (SIGHUP): the config now names no tokens and no server.jwt, which would open the API; restart to run without credentials"
                    )
                    continue
                }
                server.reloadCredentials(credentials)
                credentials.logSkippedKeys(logger)
                logger.notice(
                    "credentials reloaded (SIGHUP)",
                    metadata: ["static_tokens": "\(credentials.tokens.count)", "jwt_keys": "\(credentials.jwtKeyCount)"])
            } catch {
                logger.error("credentials not reloaded (SIGHUP): the ones in force stay", metadata: ["error": "\(describe(error).0)"])
            }
        }
    }
}
