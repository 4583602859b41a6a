// Where a command will write, checked before any work, so that a run that cannot save its results fails in a
// second instead of after computing them (and never overwrites what it reads). Checks, per output:
//  - a file is not a folder or a special file (a FIFO, /dev/null: the atomic rename would replace the node);
//  - a folder is not a file;
//  - its nearest existing ancestor is a writable folder (so the missing folders below it can be created);
//  - it is not one of the command's inputs (same file by device and inode, symlinks followed);
//  - no two outputs name the same file.
// Nothing is created until create_folders(), which the command calls once its inputs have loaded.
#pragma once
#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace amskv::cli {

class OutputCheck {
 public:
  // The files the command reads, as (flag, path); empty paths are skipped, and a missing one is left to its
  // reader to report.
  explicit OutputCheck(const std::vector<std::pair<std::string, std::string>>& inputs);

  // A file the command will write (an empty path: none). Throws amskv::Error "<flag> <path>: <problem>".
  void file(const std::string& flag, const std::string& path);
  // A folder the command will write `names` into (each checked like file()).
  void folder(const std::string& flag, const std::string& dir, const std::vector<std::string>& names);

  // Creates the folders the outputs need (their missing parents, and the folders themselves).
  void create_folders() const;

 private:
  struct Identity {
    dev_t dev;
    ino_t ino;
    std::string flag, path;
  };
  void check_not_input(const std::string& flag, const std::string& path) const;
  void check_parent(const std::string& flag, const std::string& path) const;
  void claim(const std::string& flag, const std::string& canonical, const std::string& path);

  std::vector<Identity> inputs_;
  std::map<std::string, std::string> claimed_;  // canonical path of every output file -> its flag
  std::set<std::string> folders_;                             // to create
};

}  // namespace amskv::cli
