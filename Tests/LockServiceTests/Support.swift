import NFS3
import NFS3Client
import NIOCore
import NLM
import ONCRPC
import SwiftNFSTesting

/// A client host as the lock tests play it: its name, its lock client, and one lock owner
/// (a process) on it.
struct LockingHost {
    let name: String
    let nlm: NLMClient

    static func connect(_ name: String, to server: TestServer, version: UInt32 = 4,
                        transport: RPCTransportProtocol = .tcp) async throws -> LockingHost {
        LockingHost(name: name, nlm: try await NLMClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
                                                                transport: transport, version: version))
    }

    /// A lock of process `svid` on this host over [offset, offset + length) of `file`.
    func lock(_ file: NFS3FileHandle, _ offset: UInt64 = 0, _ length: UInt64 = 0, svid: Int32 = 1) -> NLMLock {
        NLMLock(callerName: name, fileHandle: file.bytes, ownerHandle: Array("\(svid)@\(name)".utf8), svid: svid,
                offset: offset, length: length)
    }
}

/// A fresh regular file in the export's root.
func makeFile(_ client: NFS3Client, _ root: NFS3FileHandle, _ name: String = "locked") async throws -> NFS3FileHandle {
    guard let fh = try await client.create(root, Array(name.utf8)).object else { throw LockTestError.noHandle }
    return fh
}

enum LockTestError: Error { case noHandle }

/// A fresh file and two client hosts, "host-a" and "host-b", with lock clients of the server.
func fileAndTwoHosts(_ server: TestServer, _ client: NFS3Client, _ root: NFS3FileHandle,
                     version: UInt32 = 4) async throws -> (NFS3FileHandle, LockingHost, LockingHost) {
    (try await makeFile(client, root), try await LockingHost.connect("host-a", to: server, version: version),
     try await LockingHost.connect("host-b", to: server, version: version))
}
