import ArgumentParser

@main
struct SwiftNFSD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftnfsd",
        abstract: "A userspace NFSv3 server with its own portmapper and MOUNT service.",
        subcommands: [Serve.self, CheckExports.self, ExportsCommand.self, Bench.self, Status.self, Stats.self, Checkpoint.self,
                      JournalCommand.self, HACommand.self],
        defaultSubcommand: Serve.self
    )
}
