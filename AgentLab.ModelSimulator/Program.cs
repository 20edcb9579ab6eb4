// The Ollama-protocol simulator, standalone:
//   dotnet run --project AgentLab.ModelSimulator -- --urls http://127.0.0.1:11434 --Simulator:TokenLatencyMs=0
var app = AgentLab.ModelSimulator.SimulatorApp.Create(args);
app.Run();
