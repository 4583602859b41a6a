// amskv: generate images with VAR models under scale-aware KV cache policies.
#include <iostream>
#include <new>

#include "app.h"
#include "backend/backend_factory.h"
#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  namespace cli = amskv::cli;
  cli::Actions actions;
  actions.generate = cli::run_generate;
  actions.profile = cli::run_profile;
  actions.add_eval = cli::add_eval_command;
  actions.add_demo = cli::add_demo_command;
  actions.plan = cli::run_plan;
  actions.bench = cli::run_bench;
  actions.inspect = cli::run_inspect;
  actions.convert = cli::run_convert;
  actions.random_model = cli::run_random_model;
  const auto app = cli::make_app(amskv::backend::available_devices(), actions);
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app->exit(e);
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
