import NFS3

// NULL, GETATTR, LOOKUP and ACCESS: one call each, on one prepared file.

struct NullWorkload: Workload {
    let name = "null"
    let summary = "NFSPROC3_NULL: the RPC round trip with no work"
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        PreparedByClosure { _, client in CallWorker { try await client.null(); return 0 } }
    }
}

struct GetattrWorkload: Workload {
    let name = "getattr"
    let summary = "GETATTR of one file"
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        let file = try await session.createFile(in: directory, named: .name("target"))
        return PreparedByClosure { _, client in
            CallWorker {
                let attributes = try await client.getattr(file)
                try ReplyCheck.attributes(attributes, type: .regular, procedure: .getattr)
                return 0
            }
        }
    }
}

struct LookupWorkload: Workload {
    let name = "lookup"
    let summary = "LOOKUP of one name in a directory"
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        let target: [UInt8] = .name("target")
        _ = try await session.createFile(in: directory, named: target)
        return PreparedByClosure { _, client in
            CallWorker {
                let found = try await client.lookup(directory, target)
                guard !found.object.bytes.isEmpty else {
                    throw BenchError(.unexpectedReply, procedure: "LOOKUP", "empty file handle")
                }
                try ReplyCheck.attributes(found.objectAttributes, type: .regular, procedure: .lookup)
                try ReplyCheck.attributes(found.directoryAttributes, type: .directory, procedure: .lookup)
                return 0
            }
        }
    }
}

struct AccessWorkload: Workload {
    let name = "access"
    let summary = "ACCESS (read, modify, extend) of one file"
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        let file = try await session.createFile(in: directory, named: .name("target"))
        let mask = NFS3AccessMask.read | NFS3AccessMask.modify | NFS3AccessMask.extend
        return PreparedByClosure { _, client in
            CallWorker {
                let reply = try await client.access(file, mask: mask)
                try ReplyCheck.access(reply, asked: mask, required: mask)
                try ReplyCheck.attributes(reply.attributes, type: .regular, procedure: .access)
                return 0
            }
        }
    }
}
