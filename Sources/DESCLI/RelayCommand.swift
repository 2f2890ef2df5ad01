import ArgumentParser
import DESEngine
import DESKit
import Foundation

/// `des relay`: the metadata store's events, published for consumers outside DES.
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Publish the metadata store's events (new containers, deletes, retirements) to events.publish (a Redis Stream).",
        discussion: """
            Every change DES records — a container uploaded, retired or deleted, a file deleted, \
            a source body retired — is written to the metadata store's outbox (des_events) in \
            the same transaction as the change. des serve follows the outbox itself; des relay \
            publishes it for everything else, to the sink events.publish names:

              events:
                publish: {type: redis, url: "redis://127.0.0.1:6379", stream: "des:events", max_length: 100000}

            Each event becomes one stream entry (XADD … MAXLEN ~) with the fields id, kind, \
            created_at and, as they apply, container_id, container_key, day, shard, name, source \
            and row_id. Delivery is at least once: the relay keeps how far it got at \
            {stream}:cursor and starts there again, so consumers skip an id they have seen. \
            PostgreSQL wakes the relay at each commit (LISTEN/NOTIFY); other stores are read \
            every events.poll_seconds.

            Runs until SIGINT/SIGTERM, or with --until-idle until every event kept is published. \
            Metrics (on /metrics with --metrics-port): des_events_published_total{kind}, \
            des_events_lag_seconds.

            Examples:
              des relay -c des.yaml --until-idle
              des relay -c des.yaml --metrics-port 9102
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var observability: WorkerObservabilityOptions
    @Flag(help: "Stop once every event the outbox holds is published.") var untilIdle = false
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.relay")
            let runtime = try await Runtime.open(configPath: options.configPath, needSources: false)
            guard let publish = runtime.config.events.publish else {
                throw CLIFailure(
                    message: "\(options.configPath): events.publish is not set: des relay has nowhere to publish (see des relay --help)",
                    exitCode: DESExit.catalog)
            }
            let sink = try await DESCommandLine.requireRegistry().makeEventSink(publish)
            let start = Terminal.seconds()
            let settings = EventFollower.Settings(runtime.config.events)
            let relayed: Result<WorkerService<EventRelay.Totals>, any Error>
            do {
                relayed = .success(
                    try await runtime.closing { () -> WorkerService<EventRelay.Totals> in
                        let worker = EventRelay(metadata: runtime.metadata, sink: sink, settings: settings, logger: logger).service(untilIdle: untilIdle)
                        try await observability.run(worker, runtime: runtime, logger: logger)
                        return worker
                    })
            } catch {
                relayed = .failure(error)
            }
            await sink.close()
            let worker = try relayed.get()
            let totals = worker.totals ?? .init()
            let secs = max(Terminal.seconds() - start, 1e-9)
            if json {
                Terminal.out(Terminal.json(["published": totals.published, "cursor": totals.cursor ?? 0, "seconds": secs]) + "\n")
                return
            }
            Terminal.out("published \(totals.published) events to \(sink.destination) (up to event \(totals.cursor ?? 0)) in \(String(format: "%.2f", secs)) s\n")
        }
    }
}
