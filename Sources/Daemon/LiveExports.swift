import FileStore
import Logging
import NFS3Server
import NIOConcurrencyHelpers
import NIOCore

/// The exports in force, replaceable while serving. A reload parses the exports file again;
/// a file with an error keeps the table in force and says why. Exports that stay keep their
/// stores (and so their open descriptors and identity indexes); new ones are opened; removed
/// ones stop answering (their handles become stale).
final class LiveExports: Sendable {
    typealias Entry = (config: ExportEntryConfig, export: NFS3Export)

    let registry = NFS3ExportRegistry()
    private let entries = NIOLockedValueBox<[Entry]>([])
    private let configs = NIOLockedValueBox<Configs>(Configs())
    let stateDirectory: String
    let handleKey: SipHash24
    let logger: Logger
    /// Exports given on the command line, kept across reloads.
    let fixed: [ExportEntryConfig]
    let exportsFile: String?
    /// The server's durable directory (`--durable-dir`): exports without `durable=` use it.
    let defaultDurableDirectory: String?
    /// Opens the journal of a durable directory (recovery included).
    let openDurability: @Sendable (String, LiveExports) throws -> Durability
    /// The journals in use, by durable directory. New ones open while the server starts;
    /// afterwards (a reload) a directory not yet in use is refused until the next start.
    private let durabilities = NIOLockedValueBox<(byDirectory: [String: Durability], started: Bool)>(([:], false))

    init(fixed: [ExportEntryConfig], exportsFile: String?, stateDirectory: String, handleKey: SipHash24,
         defaultDurableDirectory: String?, openDurability: @escaping @Sendable (String, LiveExports) throws -> Durability,
         logger: Logger) {
        self.fixed = fixed
        self.exportsFile = exportsFile
        self.stateDirectory = stateDirectory
        self.handleKey = handleKey
        self.defaultDurableDirectory = defaultDurableDirectory
        self.openDurability = openDurability
        self.logger = logger
    }

    /// Every journal in use, once the server has started (no new ones come after that).
    func startedDurabilities() -> [Durability] {
        durabilities.withLockedValue { d in
            d.started = true
            return d.byDirectory.keys.sorted().map { d.byDirectory[$0]! }
        }
    }

    /// The journal of an export, if it has a durable directory.
    func durability(for config: ExportEntryConfig) throws -> Durability? {
        guard let directory = config.durableDirectory ?? defaultDurableDirectory else { return nil }
        return try durabilities.withLockedValue { d in
            if let existing = d.byDirectory[directory] { return existing }
            guard !d.started else {
                throw ServerStartError(description: "export \(config.path): durable directory \(directory) is new; it takes effect at the next start")
            }
            do {
                let opened = try openDurability(directory, self)
                d.byDirectory[directory] = opened
                return opened
            } catch {
                throw ServerStartError(description: "durable directory \(directory): \(error)")
            }
        }
    }

    var current: [Entry] { entries.withLockedValue { $0 } }

    /// The configuration of each export by path, and what each granted the callers seen since
    /// it was installed: every call is authorized, and a connection's address is matched against
    /// the client specifications once instead of at each call.
    struct Configs {
        var byPath: [String: ExportEntryConfig] = [:]
        var granted: [AccessKey: ClientAccess?] = [:]
        /// Addresses of clients remembered at most (a new client beyond them starts over).
        static let maxGranted = 4096
    }

    struct AccessKey: Hashable {
        var path: String
        var address: SocketAddress?
    }

    /// What export `path` grants a caller at `address`, by the configuration in force now.
    func access(path: String, address: SocketAddress?) -> ClientAccess? {
        let key = AccessKey(path: path, address: address)
        return configs.withLockedValue { c -> ClientAccess? in
            if let known = c.granted[key] { return known }
            let access = c.byPath[path]?.access(for: address)
            if c.granted.count >= Configs.maxGranted { c.granted = [:] }
            c.granted[key] = .some(access)
            return access
        }
    }

    /// Reads the exports file (if any) and installs the result.
    func load() throws {
        var configs = fixed
        if let exportsFile {
            do {
                configs += try ExportsParser.load(path: exportsFile)
            } catch {
                throw ServerStartError(description: "\(error)")
            }
        }
        try install(configs)
    }

    /// `load`, logging instead of throwing: the SIGHUP path.
    /// Reads the exports file again; returns why it was not taken (the previous table stays).
    @discardableResult
    func reload() -> String? {
        do {
            try load()
            logger.notice("exports reloaded", metadata: ["nfs.exports": "\(current.map(\.config.path))"])
            return nil
        } catch {
            logger.error("exports not reloaded; the previous table stays in force", metadata: ["nfs.error": "\(error)"])
            return "\(error)"
        }
    }

    func install(_ configs: [ExportEntryConfig]) throws {
        guard !configs.isEmpty else { throw ServerStartError(description: "nothing to export") }
        let old = current
        var new: [Entry] = []
        for config in configs {
            // Kept: the same directory, export id and durable directory.
            if let kept = old.first(where: {
                $0.config.path == config.path && NFSServer.exportID($0.config) == NFSServer.exportID(config)
                    && $0.config.durableDirectory == config.durableDirectory
            }) {
                new.append((config, kept.export))
                continue
            }
            new.append((config, try open(config)))
        }
        self.configs.withLockedValue { c in
            c = Configs()
            for e in new { c.byPath[e.config.path] = e.config }
        }
        entries.withLockedValue { $0 = new }
        registry.replace(with: new.map(\.export))
    }

    /// A node takes over (before it serves): the exports whose served trees are behind their
    /// journal (a standby's, `Durability.servedTreesBehind`) are opened again, which rebuilds
    /// them from the durable directory exactly as a start after a lost instance does (`open`:
    /// the copy, the journal after it, the identities from the files' tags), with new stores
    /// (an empty handle cache, the index brought in line). One recovery serves both: a
    /// takeover is a start on what the old active made durable here.
    func catchUp(_ durabilities: [Durability]) throws {
        let behind = try durabilities.filter { try $0.finishApplying() }
        guard !behind.isEmpty else { return }
        let reopened = try current.map { entry -> Entry in
            guard let d = try durability(for: entry.config), behind.contains(where: { $0 === d }) else { return entry }
            return (entry.config, try open(entry.config))
        }
        entries.withLockedValue { $0 = reopened }
        registry.replace(with: reopened.map(\.export))
        for d in behind { d.servedTreesCaughtUp() }
        logger.notice("served trees rebuilt from what the old active replicated", metadata: [
            "nfs.exports": "\(reopened.map(\.config.path))",
        ])
    }

    private func open(_ config: ExportEntryConfig) throws -> NFS3Export {
        let path = config.path
        let exportID = NFSServer.exportID(config)
        let store: FileStore
        do {
            let durability = try self.durability(for: config)
            let rebuilt = try durability?.rebuildIfLost(exportID: exportID, root: path) ?? false
            try durability?.seedCopyIfNeeded(exportID: exportID, root: path)
            try durability?.ensureCopyRoot(exportID: exportID, root: path)
            store = try FileStore(root: path, stateDirectory: stateDirectory, exportID: exportID,
                                  handleKey: handleKey, recorder: durability?.recorder,
                                  writeBack: durability?.settings.writeBack ?? WriteBackSettings(), logger: logger)
            if let durability {
                store.reserveFileIDs(through: durability.highestFileID)
                try durability.replay(onto: store, root: path, rebuilt: rebuilt)
                durability.settlePendingChange(of: store, rebuilt: rebuilt)
                if rebuilt {
                    try durability.withUntaggedIdentities(exportID: exportID) { store.adoptTaggedIdentities(untaggedID: $0) }
                    store.forgetMissingIdentities()
                    store.syncIndex()
                    durability.rebuildDone(exportID: exportID)
                }
                durability.markRunning(exportID: exportID)
            }
        } catch let e as ServerStartError {
            throw e
        } catch let e as StoreError where e.code == .notFound {
            throw ServerStartError(description: "export \(path): no such directory")
        } catch let e as StoreError where e.code == .notDirectory {
            throw ServerStartError(description: "export \(path): not a directory")
        } catch {
            throw ServerStartError(description: "export \(path): \(error)")
        }
        return NFS3Export(path: path, store: store, authorize: { [weak self] in self?.access(path: path, address: $0) })
    }
}
