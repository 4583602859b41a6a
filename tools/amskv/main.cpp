// amskv: generate images with VAR models under scale-aware KV cache policies.
#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"amskv: VAR (next-scale prediction) inference with AMS-KV cache policies"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "amskv 0.1.0");
  amskv::cli::add_generate_command(app);
  amskv::cli::add_profile_command(app);
  amskv::cli::add_eval_command(app);
  amskv::cli::add_plan_command(app);
  amskv::cli::add_bench_command(app);
  amskv::cli::add_demo_command(app);
  amskv::cli::add_inspect_command(app);
  amskv::cli::add_convert_command(app);
  amskv::cli::add_random_model_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const amskv::Error& e) {
    std::cerr << "amskv: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "amskv: error: out of host memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "amskv: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
