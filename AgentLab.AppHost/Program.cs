// Placeholder until the AppHost issue: the resource model, the runner and the dashboard come next.
Console.WriteLine("""
    AgentLab.AppHost is not implemented yet: it will start PostgreSQL, Redis, the model server, LabService and the
    Backend with one command. Until then, start the services by hand, each in its own terminal:

      dotnet run --project AgentLab.ModelSimulator -- --urls http://127.0.0.1:11434
      ConnectionStrings__ollama=Endpoint=http://127.0.0.1:11434 dotnet run --project AgentLab.LabService
      services__labservice__http__0=http://127.0.0.1:8001 dotnet run --project AgentLab.Backend

    (With a real Ollama on port 11434, skip the simulator: the same ConnectionStrings__ollama reaches it.)
    """);
return 1;
