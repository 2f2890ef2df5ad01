import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1 child channel with a ``ConnectionGuard`` around it: the guard's byte
/// handler first in each connection's pipeline (before the HTTP decoder), its parts handler
/// right after the decoder (Hummingbird's `additionalChannelHandlers` slot); everything else
/// is Hummingbird's own.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let configuration: HTTP1Channel.Configuration
    let connectionGuard: ConnectionGuard

    /// The builder `Application` takes.
    static func builder(configuration: HTTP1Channel.Configuration = .init(), guard connectionGuard: ConnectionGuard) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(responder: responder, configuration: configuration, connectionGuard: connectionGuard)
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // Runs on the child channel's event loop, before it is registered: no byte has been read.
        do {
            let state = ConnectionGuard.ConnectionState(owner: connectionGuard, channel: channel)
            try channel.pipeline.syncOperations.addHandler(ConnectionGuard.BytesHandler(state))
            let parts = NIOLoopBound(ConnectionGuard.PartsHandler(state), eventLoop: channel.eventLoop)
            var configuration = self.configuration
            let others = configuration.additionalChannelHandlers
            configuration.additionalChannelHandlers = { [parts.value] + others() }
            return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder, configuration: configuration).handle(value: value, logger: logger)
    }
}
