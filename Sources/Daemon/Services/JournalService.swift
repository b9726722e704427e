import Journal
import Logging
import NIOPosix
import ServiceLifecycle

/// The journals (one per durable directory): their flushes and checkpoints while the server
/// serves, and at the stop, once the connections are closed, the last write-back, fsync and
/// checkpoint within the time a service manager gives before SIGKILL. The first service of
/// the server, so the last to stop.
struct JournalService: Service {
    let durabilities: [Durability]
    let exports: LiveExports

    func run() async throws {
        await withTaskGroup(of: Void.self) { tasks in
            for durability in durabilities { tasks.addTask { await durability.run() } }
            try? await gracefulShutdown()
            // A checkpoint running in the background stops soon; `finish` does the last one.
            for durability in durabilities { durability.stopBackgroundWork() }
            tasks.cancelAll()
        }
        let deadline = Checkpointer.monotonicNow() + NFSServer.stopSeconds
        // The last write-back, fsync and checkpoint block on the disk: on a thread of their own.
        let all = durabilities
        let finished = (try? await NIOThreadPool.singleton.runIfActive {
            all.filter { durability in
                defer { durability.publishStatus() }
                return durability.finish(deadline: deadline)
            }.map(ObjectIdentifier.init)
        }) ?? []
        let upToDate = Set(finished)
        for e in exports.current {
            // A copy behind the journal keeps the marker: the served tree has every change the
            // journal holds, as after a crash of the process alone (nothing to replay at the next start).
            guard let durability = (try? exports.durability(for: e.config)) ?? nil,
                  upToDate.contains(ObjectIdentifier(durability)) else { continue }
            durability.markStopped(exportID: e.export.store.exportID)
        }
    }
}
