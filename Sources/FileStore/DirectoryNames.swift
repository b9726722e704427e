import CNFSShims
import Glibc

/// The names in the directory at `path`, but `.` and `..`, in the order the directory gives
/// them; nil when it cannot be opened.
///
/// Each name is read up to its NUL through the entry's own pointer: never through
/// `dirent.d_name` as a Swift value, which copies the whole 256-byte array, past the end of a
/// short last entry and of the buffer readdir filled (a crash when that buffer ends a mapping).
public func directoryNames(atPath path: String) -> [String]? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = String(cString: cnfs_dirent_name(entry)!)
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
